/*
 * C tests of libctc through its public header only (C99).
 *
 * Usage: test_ctc DATA_FILE
 *
 * DATA_FILE is written by tests/c_api.rs from the golden cases seed_padded_mean.json and
 * seed_concat_mean.json (the torch documentation example: T=50, C=20, N=16, S=30, torch's
 * float64 results). It is whitespace separated:
 *
 *   ctc-c-test-data 1
 *   NCASES
 *   then per case:
 *     NAME T N C PADDED S NTARGETS       PADDED is 1 (targets (N, S)) or 0 (concatenated)
 *     targets         NTARGETS integers
 *     input_lengths   N integers
 *     target_lengths  N integers
 *     log_probs       T*N*C reals, (T, N, C) row-major
 *     loss            1 real (mean reduction, float64)
 *     grad            T*N*C reals, (T, N, C) row-major
 *
 * Every check prints one line ("ok" or "FAIL"); the last line is
 * "C tests: P passed, F failed" and the exit status is 0 only when F is 0.
 */

#include "ctc.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* Reporting */

static int g_passed = 0;
static int g_failed = 0;

static int check(int ok, const char *fmt, ...) {
  va_list ap;
  printf("%s - ", ok ? "ok  " : "FAIL");
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  fflush(stdout);
  if (ok) {
    g_passed++;
  } else {
    g_failed++;
  }
  return ok;
}

static void *xmalloc(size_t bytes) {
  void *p = malloc(bytes == 0 ? 1 : bytes);
  if (p == NULL) {
    fprintf(stderr, "out of memory (%lu bytes)\n", (unsigned long)bytes);
    exit(3);
  }
  return p;
}

/* ------------------------------------------------------------------------------------------ */
/* The data file */

typedef struct Case {
  char name[128];
  int T, N, C;
  int padded; /* layout of targets in the file */
  int S;      /* width of the padded targets (0 when concatenated) */
  long ntargets;
  long long *targets;
  long long *input_lengths;
  long long *target_lengths;
  double *log_probs; /* (T, N, C) row-major */
  double loss;       /* torch, float64, mean reduction */
  double *grad;      /* (T, N, C) row-major */

  /* Both target layouts, derived from the file's. */
  int padded_width;          /* S of the padded form */
  int64_t *targets_padded;   /* (N, padded_width), int64 */
  int32_t *targets_concat;   /* (sum(target_lengths),), int32 */
  long concat_len;
  int64_t *input_lengths64;
  int64_t *target_lengths64;
  int32_t *input_lengths32;
  int32_t *target_lengths32;
} Case;

static int read_ll(FILE *f, long long *v) { return fscanf(f, "%lld", v) == 1; }
static int read_d(FILE *f, double *v) { return fscanf(f, "%lf", v) == 1; }

static int read_case(FILE *f, Case *c) {
  long i, n;
  memset(c, 0, sizeof *c);
  if (fscanf(f, "%127s %d %d %d %d %d %ld", c->name, &c->T, &c->N, &c->C, &c->padded, &c->S,
             &c->ntargets) != 7) {
    return 0;
  }
  if (c->T < 0 || c->N < 1 || c->C < 1 || c->ntargets < 0 || c->S < 0) {
    return 0;
  }
  n = (long)c->T * c->N * c->C;
  c->targets = (long long *)xmalloc((size_t)c->ntargets * sizeof(long long));
  c->input_lengths = (long long *)xmalloc((size_t)c->N * sizeof(long long));
  c->target_lengths = (long long *)xmalloc((size_t)c->N * sizeof(long long));
  c->log_probs = (double *)xmalloc((size_t)n * sizeof(double));
  c->grad = (double *)xmalloc((size_t)n * sizeof(double));
  for (i = 0; i < c->ntargets; i++) {
    if (!read_ll(f, &c->targets[i])) return 0;
  }
  for (i = 0; i < c->N; i++) {
    if (!read_ll(f, &c->input_lengths[i])) return 0;
  }
  for (i = 0; i < c->N; i++) {
    if (!read_ll(f, &c->target_lengths[i])) return 0;
  }
  for (i = 0; i < n; i++) {
    if (!read_d(f, &c->log_probs[i])) return 0;
  }
  if (!read_d(f, &c->loss)) return 0;
  for (i = 0; i < n; i++) {
    if (!read_d(f, &c->grad[i])) return 0;
  }
  return 1;
}

/* Builds the padded int64 and the concatenated int32 forms of the targets. */
static int derive_layouts(Case *c) {
  long b, j, total = 0, at;
  long long width = 0;
  for (b = 0; b < c->N; b++) {
    if (c->target_lengths[b] < 0) return 0;
    total += (long)c->target_lengths[b];
    if (c->target_lengths[b] > width) width = c->target_lengths[b];
  }
  if (c->padded) {
    if (c->ntargets != (long)c->N * c->S) return 0;
    width = c->S;
  } else if (c->ntargets != total) {
    return 0;
  }
  c->padded_width = (int)width;
  c->concat_len = total;
  c->targets_padded = (int64_t *)xmalloc((size_t)(c->N * width) * sizeof(int64_t));
  c->targets_concat = (int32_t *)xmalloc((size_t)total * sizeof(int32_t));
  c->input_lengths64 = (int64_t *)xmalloc((size_t)c->N * sizeof(int64_t));
  c->target_lengths64 = (int64_t *)xmalloc((size_t)c->N * sizeof(int64_t));
  c->input_lengths32 = (int32_t *)xmalloc((size_t)c->N * sizeof(int32_t));
  c->target_lengths32 = (int32_t *)xmalloc((size_t)c->N * sizeof(int32_t));
  if (c->padded) {
    /* Keep the file's padding as it is (the library must never read it). */
    for (j = 0; j < c->ntargets; j++) c->targets_padded[j] = (int64_t)c->targets[j];
  } else {
    /* Pad with -1, which the contract allows since padding is never read. */
    for (j = 0; j < c->N * width; j++) c->targets_padded[j] = -1;
  }
  at = 0;
  for (b = 0; b < c->N; b++) {
    for (j = 0; j < c->target_lengths[b]; j++) {
      if (c->padded) {
        c->targets_concat[at] = (int32_t)c->targets[b * c->S + j];
      } else {
        c->targets_concat[at] = (int32_t)c->targets[at];
        c->targets_padded[b * width + j] = (int64_t)c->targets[at];
      }
      at++;
    }
    c->input_lengths64[b] = (int64_t)c->input_lengths[b];
    c->target_lengths64[b] = (int64_t)c->target_lengths[b];
    c->input_lengths32[b] = (int32_t)c->input_lengths[b];
    c->target_lengths32[b] = (int32_t)c->target_lengths[b];
  }
  return 1;
}

static void free_case(Case *c) {
  free(c->targets);
  free(c->input_lengths);
  free(c->target_lengths);
  free(c->log_probs);
  free(c->grad);
  free(c->targets_padded);
  free(c->targets_concat);
  free(c->input_lengths64);
  free(c->target_lengths64);
  free(c->input_lengths32);
  free(c->target_lengths32);
}

/* ------------------------------------------------------------------------------------------ */
/* Tensors */

static CtcTensor tensor(void *data, CtcDType dtype, int ndim, const int64_t *shape,
                        const int64_t *strides) {
  CtcTensor t;
  int i;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.dtype = dtype;
  t.device = CTC_DEVICE_CPU;
  t.device_index = 0;
  t.ndim = ndim;
  for (i = 0; i < ndim; i++) {
    t.shape[i] = shape[i];
    t.strides[i] = strides[i];
  }
  return t;
}

static size_t dtype_size(CtcDType dtype) {
  return dtype == CTC_DTYPE_FLOAT32 ? sizeof(float) : sizeof(double);
}

static void store(void *buf, CtcDType dtype, size_t i, double v) {
  if (dtype == CTC_DTYPE_FLOAT32) {
    ((float *)buf)[i] = (float)v;
  } else {
    ((double *)buf)[i] = v;
  }
}

static double load(const void *buf, CtcDType dtype, size_t i) {
  return dtype == CTC_DTYPE_FLOAT32 ? (double)((const float *)buf)[i] : ((const double *)buf)[i];
}

static const char *dtype_name(CtcDType dtype) {
  return dtype == CTC_DTYPE_FLOAT32 ? "f32" : "f64";
}

/* ------------------------------------------------------------------------------------------ */
/* One call of the library */

enum Entry { FUSED, FORWARD, BACKWARD };
enum Targets { PADDED_INT64, CONCAT_INT32 };
enum Workspace { WS_NONE, WS_MISALIGNED, WS_ONE_BYTE_SHORT };

typedef struct Run {
  CtcDType dtype;
  enum Targets targets;
  enum Entry entry;
  int batch_first;        /* log_probs and grad in (N, T, C) memory seen through strides */
  enum Workspace workspace;
  long bad_label_at;      /* -1, or an index of the padded targets to set to C */
} Run;

typedef struct Outcome {
  CtcStatus status;
  double loss;     /* converted to double (exact for float32) */
  double *grad;    /* (T, N, C) row-major, converted to double (exact for float32) */
  int untouched;   /* loss and grad still hold their sentinels */
  size_t workspace_bytes;
  CtcStatus workspace_status;
} Outcome;

static const double LOSS_SENTINEL = -123.0;
static const double GRAD_SENTINEL = -7.0;

static Outcome run(const Case *c, const Run *r) {
  Outcome o;
  const int64_t T = c->T, N = c->N, C = c->C;
  const size_t n = (size_t)(T * N * C), es = dtype_size(r->dtype);
  int64_t lp_shape[3], lp_strides[3], tg_shape[2], tg_strides[2], len_shape[1], one[1];
  void *lp = xmalloc(n * es), *grad = xmalloc(n * es), *loss = xmalloc(es);
  int64_t *bad_targets = NULL;
  unsigned char *ws_base = NULL;
  CtcTensor t_lp, t_tg, t_il, t_tl, t_loss, t_grad;
  CtcOptions opts = ctc_options_default();
  int64_t t, b, k;

  memset(&o, 0, sizeof o);
  o.grad = (double *)xmalloc(n * sizeof(double));

  lp_shape[0] = T;
  lp_shape[1] = N;
  lp_shape[2] = C;
  if (r->batch_first) {
    lp_strides[0] = C;
    lp_strides[1] = T * C;
    lp_strides[2] = 1;
  } else {
    lp_strides[0] = N * C;
    lp_strides[1] = C;
    lp_strides[2] = 1;
  }
  for (t = 0; t < T; t++) {
    for (b = 0; b < N; b++) {
      for (k = 0; k < C; k++) {
        size_t at = (size_t)(t * lp_strides[0] + b * lp_strides[1] + k * lp_strides[2]);
        store(lp, r->dtype, at, c->log_probs[(t * N + b) * C + k]);
        store(grad, r->dtype, at, GRAD_SENTINEL);
      }
    }
  }
  store(loss, r->dtype, 0, LOSS_SENTINEL);
  t_lp = tensor(lp, r->dtype, 3, lp_shape, lp_strides);
  t_grad = tensor(grad, r->dtype, 3, lp_shape, lp_strides);
  t_loss = tensor(loss, r->dtype, 0, NULL, NULL);

  len_shape[0] = N;
  one[0] = 1;
  if (r->targets == PADDED_INT64) {
    int64_t *data = c->targets_padded;
    tg_shape[0] = N;
    tg_shape[1] = c->padded_width;
    tg_strides[0] = c->padded_width;
    tg_strides[1] = 1;
    if (r->bad_label_at >= 0) {
      bad_targets = (int64_t *)xmalloc((size_t)(N * c->padded_width) * sizeof(int64_t));
      memcpy(bad_targets, c->targets_padded, (size_t)(N * c->padded_width) * sizeof(int64_t));
      bad_targets[r->bad_label_at] = C;
      data = bad_targets;
    }
    t_tg = tensor(data, CTC_DTYPE_INT64, 2, tg_shape, tg_strides);
    t_il = tensor(c->input_lengths64, CTC_DTYPE_INT64, 1, len_shape, one);
    t_tl = tensor(c->target_lengths64, CTC_DTYPE_INT64, 1, len_shape, one);
  } else {
    tg_shape[0] = c->concat_len;
    tg_strides[0] = 1;
    t_tg = tensor(c->targets_concat, CTC_DTYPE_INT32, 1, tg_shape, tg_strides);
    t_il = tensor(c->input_lengths32, CTC_DTYPE_INT32, 1, len_shape, one);
    t_tl = tensor(c->target_lengths32, CTC_DTYPE_INT32, 1, len_shape, one);
  }

  opts.reduction = CTC_REDUCTION_MEAN;
  if (r->workspace != WS_NONE) {
    size_t bytes = 0;
    o.workspace_status = ctc_workspace_size(&t_lp, &t_tg, &t_il, &t_tl, &opts, &bytes);
    o.workspace_bytes = bytes;
    if (r->workspace == WS_ONE_BYTE_SHORT && bytes > 0) bytes -= 1;
    /* One byte past malloc's alignment: the library must cope with any alignment. */
    ws_base = (unsigned char *)xmalloc(bytes + 1);
    memset(ws_base, 0xA5, bytes + 1);
    opts.workspace = ws_base + 1;
    opts.workspace_bytes = bytes;
  }

  switch (r->entry) {
    case FUSED:
      o.status = ctc_loss_forward_backward(&t_lp, &t_tg, &t_il, &t_tl, NULL, &opts, &t_loss,
                                           &t_grad);
      break;
    case FORWARD:
      o.status = ctc_loss_forward(&t_lp, &t_tg, &t_il, &t_tl, &opts, &t_loss);
      break;
    case BACKWARD:
      o.status = ctc_loss_backward(&t_lp, &t_tg, &t_il, &t_tl, NULL, &opts, &t_grad);
      break;
  }

  o.loss = load(loss, r->dtype, 0);
  o.untouched = o.loss == LOSS_SENTINEL;
  for (t = 0; t < T; t++) {
    for (b = 0; b < N; b++) {
      for (k = 0; k < C; k++) {
        size_t at = (size_t)(t * lp_strides[0] + b * lp_strides[1] + k * lp_strides[2]);
        double v = load(grad, r->dtype, at);
        o.grad[(t * N + b) * C + k] = v;
        if (v != GRAD_SENTINEL) o.untouched = 0;
      }
    }
  }

  free(ws_base);
  free(bad_targets);
  free(loss);
  free(grad);
  free(lp);
  return o;
}

/* ------------------------------------------------------------------------------------------ */
/* Comparisons */

static int same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

static int same_grad_bits(const double *a, const double *b, size_t n, size_t *first_diff) {
  size_t i;
  for (i = 0; i < n; i++) {
    if (!same_bits(a[i], b[i])) {
      *first_diff = i;
      return 0;
    }
  }
  return 1;
}

/* Checks a successful outcome against the golden float64 values. */
static void check_golden(const Case *c, const Outcome *o, CtcDType dtype, const char *what) {
  const size_t n = (size_t)c->T * c->N * c->C;
  const double loss_tol = dtype == CTC_DTYPE_FLOAT64 ? 1e-10 : 1e-5;
  const double grad_tol = dtype == CTC_DTYPE_FLOAT64 ? 1e-10 : 1e-5;
  double rel = fabs(o->loss - c->loss) / fabs(c->loss);
  double worst = 0.0;
  size_t i, worst_at = 0;
  int finite = 1;
  check(isfinite(o->loss) && rel <= loss_tol,
        "[%s %s] %s: loss %.17g vs torch %.17g (relative error %.3g, tolerance %g)",
        dtype_name(dtype), c->name, what, o->loss, c->loss, rel, loss_tol);
  for (i = 0; i < n; i++) {
    double e = fabs(o->grad[i] - c->grad[i]);
    if (!isfinite(o->grad[i])) finite = 0;
    if (e > worst) {
      worst = e;
      worst_at = i;
    }
  }
  check(finite && worst <= grad_tol,
        "[%s %s] %s: gradient max absolute error %.3g at %lu (tolerance %g)", dtype_name(dtype),
        c->name, what, worst, (unsigned long)worst_at, grad_tol);
}

static void check_same(const Case *c, CtcDType dtype, const Outcome *a, const Outcome *b,
                       int compare_loss, int compare_grad, const char *what) {
  const size_t n = (size_t)c->T * c->N * c->C;
  size_t diff = 0;
  if (compare_loss) {
    check(same_bits(a->loss, b->loss), "[%s %s] %s: same loss bits (%.17g vs %.17g)",
          dtype_name(dtype), c->name, what, a->loss, b->loss);
  }
  if (compare_grad) {
    int same = same_grad_bits(a->grad, b->grad, n, &diff);
    if (same) {
      check(1, "[%s %s] %s: same gradient bits", dtype_name(dtype), c->name, what);
    } else {
      check(0, "[%s %s] %s: same gradient bits (first difference at %lu: %.17g vs %.17g)",
            dtype_name(dtype), c->name, what, (unsigned long)diff, a->grad[diff], b->grad[diff]);
    }
  }
}

static int check_success(const Case *c, CtcDType dtype, const Outcome *o, const char *what) {
  return check(o->status == CTC_STATUS_SUCCESS, "[%s %s] %s: status %d (%s)%s%s",
               dtype_name(dtype), c->name, what, (int)o->status, ctc_status_string(o->status),
               o->status == CTC_STATUS_SUCCESS ? "" : ": ",
               o->status == CTC_STATUS_SUCCESS ? "" : ctc_last_error_message());
}

/* ------------------------------------------------------------------------------------------ */
/* The tests */

static void test_case(const Case *c, CtcDType dtype) {
  static const char *const target_names[2] = {"padded int64 targets", "concatenated int32 targets"};
  Outcome fused[2];
  int kind;
  char what[160];
  Run r;

  memset(&r, 0, sizeof r);
  r.dtype = dtype;
  r.bad_label_at = -1;

  for (kind = 0; kind < 2; kind++) {
    Outcome o;
    r.targets = (enum Targets)kind;
    r.entry = FUSED;
    r.batch_first = 0;
    r.workspace = WS_NONE;

    /* The fused call against torch. */
    sprintf(what, "forward_backward, %s", target_names[kind]);
    fused[kind] = run(c, &r);
    if (check_success(c, dtype, &fused[kind], what)) {
      check_golden(c, &fused[kind], dtype, what);
    }

    /* ctc_loss_forward alone gives the fused loss bits. */
    r.entry = FORWARD;
    o = run(c, &r);
    sprintf(what, "forward, %s", target_names[kind]);
    if (check_success(c, dtype, &o, what)) {
      sprintf(what, "forward vs forward_backward, %s", target_names[kind]);
      check_same(c, dtype, &o, &fused[kind], 1, 0, what);
    }
    free(o.grad);

    /* ctc_loss_backward with grad_loss = NULL gives the fused gradient bits. */
    r.entry = BACKWARD;
    o = run(c, &r);
    sprintf(what, "backward(grad_loss=NULL), %s", target_names[kind]);
    if (check_success(c, dtype, &o, what)) {
      check(o.loss == LOSS_SENTINEL, "[%s %s] %s: loss buffer not written", dtype_name(dtype),
            c->name, what);
      sprintf(what, "backward(grad_loss=NULL) vs forward_backward, %s", target_names[kind]);
      check_same(c, dtype, &o, &fused[kind], 0, 1, what);
    }
    free(o.grad);

    /* (N, T, C) memory through strides {C, T*C, 1}, for log_probs and the gradient. */
    r.entry = FUSED;
    r.batch_first = 1;
    o = run(c, &r);
    sprintf(what, "(N, T, C) memory via strides {C, T*C, 1}, %s", target_names[kind]);
    if (check_success(c, dtype, &o, what)) {
      sprintf(what, "(N, T, C) strided vs contiguous (T, N, C), %s", target_names[kind]);
      check_same(c, dtype, &o, &fused[kind], 1, 1, what);
    }
    free(o.grad);
    r.batch_first = 0;

    /* A caller workspace of exactly ctc_workspace_size bytes, misaligned by one byte. */
    r.workspace = WS_MISALIGNED;
    o = run(c, &r);
    sprintf(what, "ctc_workspace_size, %s", target_names[kind]);
    check(o.workspace_status == CTC_STATUS_SUCCESS && o.workspace_bytes > 0,
          "[%s %s] %s: status %d, %lu bytes", dtype_name(dtype), c->name, what,
          (int)o.workspace_status, (unsigned long)o.workspace_bytes);
    sprintf(what, "caller workspace misaligned by 1 byte, %s", target_names[kind]);
    if (check_success(c, dtype, &o, what)) {
      check_same(c, dtype, &o, &fused[kind], 1, 1, what);
    }
    free(o.grad);

    /* One byte short of ctc_workspace_size: refused, outputs untouched. */
    r.workspace = WS_ONE_BYTE_SHORT;
    o = run(c, &r);
    sprintf(what, "workspace one byte short, %s", target_names[kind]);
    check(o.status == CTC_STATUS_INVALID_ARGUMENT && o.untouched,
          "[%s %s] %s: status %d (%s), outputs %s, message \"%s\"", dtype_name(dtype), c->name,
          what, (int)o.status, ctc_status_string(o.status),
          o.untouched ? "untouched" : "WRITTEN", ctc_last_error_message());
    free(o.grad);
  }

  /* Padded and concatenated targets describe the same labels: the same bits. */
  if (fused[0].status == CTC_STATUS_SUCCESS && fused[1].status == CTC_STATUS_SUCCESS) {
    check_same(c, dtype, &fused[0], &fused[1], 1, 1, "padded int64 vs concatenated int32");
  }
  free(fused[0].grad);
  free(fused[1].grad);
}

static void test_error_path(const Case *c) {
  Run r;
  Outcome o;
  const char *msg;
  char want[64];

  memset(&r, 0, sizeof r);
  r.dtype = CTC_DTYPE_FLOAT64;
  r.targets = PADDED_INT64;
  r.entry = FUSED;
  r.workspace = WS_NONE;

  if (!check(c->N > 3 && c->target_lengths[3] > 7 && c->padded_width > 7,
             "[error path %s] sample 3 has more than 7 labels", c->name)) {
    return;
  }
  r.bad_label_at = 3L * c->padded_width + 7;
  o = run(c, &r);
  msg = ctc_last_error_message();
  check(o.status == CTC_STATUS_INVALID_ARGUMENT,
        "[error path] targets[3][7] = %d: status %d (%s), want CTC_STATUS_INVALID_ARGUMENT",
        c->C, (int)o.status, ctc_status_string(o.status));
  sprintf(want, "targets[3][7] = %d", c->C);
  check(msg != NULL && strstr(msg, want) != NULL, "[error path] message \"%s\" contains \"%s\"",
        msg ? msg : "(null)", want);
  check(o.loss == LOSS_SENTINEL, "[error path] loss keeps its sentinel (%g)", o.loss);
  check(o.untouched, "[error path] gradient keeps its sentinel everywhere");
  free(o.grad);

  check(strcmp(ctc_status_string(CTC_STATUS_INVALID_ARGUMENT), "invalid argument") == 0,
        "ctc_status_string(CTC_STATUS_INVALID_ARGUMENT) = \"%s\"",
        ctc_status_string(CTC_STATUS_INVALID_ARGUMENT));
  check(strcmp(ctc_status_string(CTC_STATUS_SUCCESS), "success") == 0,
        "ctc_status_string(CTC_STATUS_SUCCESS) = \"%s\"", ctc_status_string(CTC_STATUS_SUCCESS));

  /* A following successful call clears the message. */
  r.bad_label_at = -1;
  r.dtype = CTC_DTYPE_FLOAT32;
  r.targets = CONCAT_INT32;
  r.entry = FORWARD;
  o = run(c, &r);
  msg = ctc_last_error_message();
  check(o.status == CTC_STATUS_SUCCESS && msg != NULL && msg[0] == '\0',
        "[error path] a following successful call: status %d, message reset to \"%s\"",
        (int)o.status, msg ? msg : "(null)");
  free(o.grad);
}

static void test_misc(void) {
  CtcOptions d = ctc_options_default();
  const char *msg = ctc_last_error_message();
  int32_t devices = ctc_cuda_device_count();

  check(msg != NULL && msg[0] == '\0', "ctc_last_error_message() before any call is \"%s\"",
        msg ? msg : "(null)");
  check(strcmp(CTC_VERSION_STRING, ctc_version_string()) == 0,
        "CTC_VERSION_STRING \"%s\" == ctc_version_string() \"%s\"", CTC_VERSION_STRING,
        ctc_version_string());
  check((uint32_t)CTC_VERSION_NUMBER == ctc_version_number(),
        "CTC_VERSION_NUMBER %lu == ctc_version_number() %lu", (unsigned long)CTC_VERSION_NUMBER,
        (unsigned long)ctc_version_number());
  check(devices >= 0, "ctc_cuda_device_count() = %ld >= 0", (long)devices);
  check(d.struct_size == sizeof(CtcOptions) && d.blank == 0 &&
            d.reduction == CTC_REDUCTION_MEAN && !d.zero_infinity && d.num_threads == 0 &&
            d.cuda_stream == NULL && d.workspace == NULL && d.workspace_bytes == 0,
        "ctc_options_default(): struct_size %lu == sizeof(CtcOptions) %lu, documented defaults",
        (unsigned long)d.struct_size, (unsigned long)sizeof(CtcOptions));
}

int main(int argc, char **argv) {
  FILE *f;
  char magic[64];
  int version, ncases, i;
  Case *cases;

  if (argc != 2) {
    fprintf(stderr, "usage: %s DATA_FILE (written by tests/c_api.rs)\n", argv[0]);
    return 2;
  }
  f = fopen(argv[1], "r");
  if (f == NULL) {
    fprintf(stderr, "cannot open %s\n", argv[1]);
    return 2;
  }
  if (fscanf(f, "%63s %d %d", magic, &version, &ncases) != 3 ||
      strcmp(magic, "ctc-c-test-data") != 0 || version != 1 || ncases < 1) {
    fprintf(stderr, "%s: not a version 1 ctc-c-test-data file\n", argv[1]);
    return 2;
  }
  cases = (Case *)xmalloc((size_t)ncases * sizeof(Case));
  for (i = 0; i < ncases; i++) {
    if (!read_case(f, &cases[i]) || !derive_layouts(&cases[i])) {
      fprintf(stderr, "%s: case %d is malformed\n", argv[1], i);
      return 2;
    }
  }
  fclose(f);

  test_misc();
  for (i = 0; i < ncases; i++) {
    printf("# case %s: T=%d N=%d C=%d, %s targets in the file\n", cases[i].name, cases[i].T,
           cases[i].N, cases[i].C, cases[i].padded ? "padded" : "concatenated");
    test_case(&cases[i], CTC_DTYPE_FLOAT64);
    test_case(&cases[i], CTC_DTYPE_FLOAT32);
  }
  test_error_path(&cases[0]);
  for (i = 0; i < ncases; i++) free_case(&cases[i]);
  free(cases);

  printf("C tests: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
