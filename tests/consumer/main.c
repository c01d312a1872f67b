/* A tiny consumer of an installed libctc: one CTC loss through the C ABI and, through the C++
 * binding in consumer.cpp, the same loss again. Exits non-zero when anything is off. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <ctc.h>

double cpp_loss(void);

int main(void) {
  /* T = 2, N = 1, C = 3, target [1]: loss = -log(p01 p11 + p00 p11 + p01 p10). */
  const double p[2][3] = {{0.2, 0.5, 0.3}, {0.6, 0.1, 0.3}};
  double lp[6];
  for (int t = 0; t < 2; ++t)
    for (int c = 0; c < 3; ++c) lp[t * 3 + c] = log(p[t][c]);
  long long target = 1, il = 2, tl = 1;
  double loss = 0;
  CtcTensor t_lp = {lp, CTC_DTYPE_FLOAT64, CTC_DEVICE_CPU, 0, 3, {2, 1, 3}, {3, 3, 1}};
  CtcTensor t_tg = {&target, CTC_DTYPE_INT64, CTC_DEVICE_CPU, 0, 2, {1, 1}, {1, 1}};
  CtcTensor t_il = {&il, CTC_DTYPE_INT64, CTC_DEVICE_CPU, 0, 1, {1, 0, 0}, {1, 0, 0}};
  CtcTensor t_tl = {&tl, CTC_DTYPE_INT64, CTC_DEVICE_CPU, 0, 1, {1, 0, 0}, {1, 0, 0}};
  CtcTensor t_loss = {&loss, CTC_DTYPE_FLOAT64, CTC_DEVICE_CPU, 0, 0, {0, 0, 0}, {0, 0, 0}};
  CtcStatus st = ctc_loss_forward(&t_lp, &t_tg, &t_il, &t_tl, NULL, &t_loss);
  double expected = -log(p[0][1] * p[1][1] + p[0][0] * p[1][1] + p[0][1] * p[1][0]);
  int ok = st == CTC_STATUS_SUCCESS && fabs(loss - expected) < 1e-14 &&
           fabs(cpp_loss() - expected) < 1e-14 && strcmp(ctc_version_string(), CTC_VERSION_STRING) == 0;
  printf("consumer: libctc %s, loss %.15f (expected %.15f): %s\n", ctc_version_string(), loss, expected,
         ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
