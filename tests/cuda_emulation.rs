//! The CUDA kernels of `src/cuda/kernels/ctc.cu`, run on the CPU: `tests/cuda_emu/run_emu.cpp`
//! compiles the very same file as C++20 against the emulation header `tests/cuda_emu/emu.h` (one
//! std::thread per CUDA thread, a std::barrier for `__syncthreads`), and this test checks what
//! it computes:
//!
//! - every golden case of tests/data/golden, float64 and float32, in four memory layouts and
//!   three block sizes, with the tolerances of tests/golden.rs, and the same bits in every layout
//!   and block size (no sum depends on either);
//! - invalid device-side values (label out of range or equal to blank, input length > T or
//!   negative, target length > S or negative, concatenated targets too short) give a NaN loss
//!   and a NaN gradient slice for their sample only (and for the later samples of concatenated
//!   targets after a negative length); every other sample keeps its bits;
//! - random small problems (garbage lengths and labels included) against the scalar reference
//!   inside run_emu.cpp, with block sizes from 1 to 64;
//! - the same fuzzing under AddressSanitizer and UBSan when the compiler can build with them
//!   (so that out-of-bounds reads of the inputs fail too, not only writes, which the guard
//!   elements of run_emu.cpp catch in every build);
//! - forced alignment (`ctc_align_<t>`): torchaudio's golden alignments and random batches with
//!   ties, impossible samples, -inf and NaN against the CPU backend's `ctc_align` (the same path
//!   and score bits) in four layouts with segment lengths from 1 frame to more than T, and
//!   invalid device-side values (their sample alone gets path -1 and score -inf), also under
//!   AddressSanitizer.
//!
//! Skipped, with the reason printed, when there is no C++20 compiler (`$CXX`, default `c++`).

mod common;

use common::native::{
    manifest_dir, native_builds_possible, run_ok, show, skip, summary, tmp_dir, tool, STRICT,
};
use common::{
    all_golden, check_golden_f32, check_golden_f64, golden_dir, last_error, load_golden, tensor,
    Float, Golden, Layout, Rng, Strided,
};
use ctc::ffi::{CTC_REDUCTION_MEAN, CTC_REDUCTION_NONE, CTC_REDUCTION_SUM};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// (block size, layout) runs of the golden cases: every layout of run_emu.cpp at 32 threads,
/// and 128 and 4 threads once each (one std::thread per CUDA thread keeps blocks small).
const GOLDEN_CONFIGS: [(usize, usize); 6] = [(32, 0), (32, 1), (32, 2), (32, 3), (128, 1), (4, 3)];
/// Runs of the invalid-value cases: the layouts differ in capacities and integer types.
const INVALID_CONFIGS: [(usize, usize); 4] = [(32, 0), (32, 1), (32, 2), (32, 3)];
/// The emulation is killed after this long (a divergent barrier would otherwise hang).
const DEADLINE: Duration = Duration::from_secs(900);

fn dir() -> PathBuf {
    tmp_dir("cuda_emulation")
}

/// Compiles run_emu.cpp with `extra` flags into `name`; None (with the reason printed) when the
/// compiler cannot build and run a C++20 program using std::barrier with those flags.
fn build(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let cxx = tool("CXX", "c++");
    if !native_builds_possible("cuda_emulation", &cxx) {
        skip("cuda_emulation", "no native C++ build here (see above)");
        return None;
    }
    let probe = dir().join(format!("probe_{name}.cpp"));
    std::fs::write(
        &probe,
        "#include <barrier>\n#include <bit>\nint main() { std::barrier b(1); b.arrive_and_wait(); \
         return std::bit_cast<int>(0.0f); }\n",
    )
    .unwrap();
    let probe_exe = dir().join(format!("probe_{name}"));
    let mut cmd = Command::new(&cxx);
    cmd.args(["-std=c++20", "-pthread"])
        .args(extra)
        .arg(&probe)
        .arg("-o")
        .arg(&probe_exe);
    let ok = cmd.output().is_ok_and(|o| o.status.success())
        && Command::new(&probe_exe)
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        skip(
            name,
            &format!(
                "`{}` does not build and run a C++20 program with std::barrier (set CXX to a \
                 C++20 compiler)",
                show(&cmd)
            ),
        );
        return None;
    }
    let exe = dir().join(name);
    let mut cmd = Command::new(&cxx);
    cmd.args(["-std=c++20", "-O1", "-pthread"])
        .args(STRICT)
        .args(extra)
        .arg(manifest_dir().join("tests/cuda_emu/run_emu.cpp"))
        .arg("-o")
        .arg(&exe);
    let started = Instant::now();
    run_ok(cmd);
    println!("built {name} in {:.1} s", started.elapsed().as_secs_f64());
    Some(exe)
}

/// The plain build, shared by the tests of this file.
fn emulator() -> Option<&'static Path> {
    static EXE: OnceLock<Option<PathBuf>> = OnceLock::new();
    EXE.get_or_init(|| build("run_emu", &[])).as_deref()
}

/// Runs the emulator with `args`, its output going to the file `log`; checks that it exits
/// successfully with no FAIL line and at least `min_checks` checks passed.
fn run_emulator(exe: &Path, args: &[&str], log: &str, min_checks: u32) {
    let log_path = dir().join(log);
    let file = std::fs::File::create(&log_path).unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(args).stdout(Stdio::from(file));
    println!("$ {} > {}", show(&cmd), log_path.display());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("the emulator starts");
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > DEADLINE {
            child.kill().ok();
            child.wait().ok();
            panic!(
                "{log}: the emulator ran past {DEADLINE:?} (a barrier not every thread reaches?)"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    println!("{log}: {:.1} s", started.elapsed().as_secs_f64());
    let out = std::fs::read_to_string(&log_path).unwrap();
    let fails: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        fails.is_empty(),
        "{log}: {} emulator checks failed:\n{}",
        fails.len(),
        fails[..fails.len().min(30)].join("\n")
    );
    let (passed, failed) = summary(&out, "emu tests");
    assert!(
        status.success() && failed == 0,
        "{log}: the emulator failed ({status}); see {}",
        log_path.display()
    );
    assert!(passed >= min_checks, "{log}: only {passed} checks ran");
    assert_eq!(
        passed as usize,
        out.lines().filter(|l| l.starts_with("ok")).count(),
        "{log}: the summary counts every ok line"
    );
}

fn reduction_code(g: &Golden) -> u32 {
    match g.reduction {
        r if r == CTC_REDUCTION_NONE => 0,
        r if r == CTC_REDUCTION_MEAN => 1,
        r if r == CTC_REDUCTION_SUM => 2,
        r => panic!("reduction {r}"),
    }
}

/// Number of loss values the emulator writes: N for reduction none, else 1.
fn loss_count(g: &Golden) -> usize {
    if reduction_code(g) == 0 {
        g.n
    } else {
        1
    }
}

/// The data file of run_emu.cpp (format in its header comment).
fn write_data(name: &str, cases: &[Golden]) -> PathBuf {
    let mut s = format!("ctc-emu-data 1\n{}\n", cases.len());
    for g in cases {
        assert_eq!(
            g.grad_out.len(),
            loss_count(g),
            "{}: upstream gradients",
            g.name
        );
        assert_eq!(g.log_probs.len(), g.t * g.n * g.c, "{}: log_probs", g.name);
        writeln!(
            s,
            "case {} {} {} {} {} {} {} {} {} {} {}",
            g.name,
            g.t,
            g.n,
            g.c,
            g.blank,
            reduction_code(g),
            u8::from(g.zero_infinity),
            u8::from(g.padded),
            if g.padded { g.s } else { 0 },
            g.targets.len(),
            g.grad_out.len()
        )
        .unwrap();
        for v in [&g.targets, &g.input_lengths, &g.target_lengths] {
            let line: Vec<String> = v.iter().map(i64::to_string).collect();
            writeln!(s, "{}", line.join(" ")).unwrap();
        }
        // `{:e}` is the shortest text that reads back as the same f64 (inf, -inf, NaN included).
        for row in std::iter::once(&g.grad_out[..]).chain(g.log_probs.chunks(g.c.max(1))) {
            let line: Vec<String> = row.iter().map(|x| format!("{x:e}")).collect();
            writeln!(s, "{}", line.join(" ")).unwrap();
        }
    }
    let path = dir().join(name);
    std::fs::write(&path, s).unwrap();
    path
}

/// One run's results: the loss values and the logical (T, N, C) gradient.
struct Outcome {
    loss: Vec<f64>,
    grad: Vec<f64>,
}

/// Runs `cases` in the emulator's golden mode with `configs`; returns the results indexed
/// [case][dtype: 0 f64, 1 f32][config].
fn run_cases(
    exe: &Path,
    cases: &[Golden],
    configs: &[(usize, usize)],
    name: &str,
) -> Vec<[Vec<Outcome>; 2]> {
    let data = write_data(&format!("{name}.txt"), cases);
    let out = dir().join(format!("{name}.bin"));
    let list: Vec<String> = configs.iter().map(|(b, l)| format!("{b}:{l}")).collect();
    // Per case and dtype: one check per config, two for the repeated runs; and one at the end.
    let min = (cases.len() * 2 * (configs.len() + 2) + 1) as u32;
    run_emulator(
        exe,
        &[
            "golden",
            data.to_str().unwrap(),
            out.to_str().unwrap(),
            &list.join(","),
        ],
        &format!("{name}.log"),
        min,
    );
    let bytes = std::fs::read(&out).unwrap();
    let values: Vec<f64> = bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let mut at = 0;
    let mut take = |n: usize| {
        at += n;
        values[at - n..at].to_vec()
    };
    let results = cases
        .iter()
        .map(|g| {
            let mut dtype = || {
                configs
                    .iter()
                    .map(|_| Outcome {
                        loss: take(loss_count(g)),
                        grad: take(g.t * g.n * g.c),
                    })
                    .collect()
            };
            let f64s = dtype();
            [f64s, dtype()]
        })
        .collect();
    assert_eq!(
        at * 8,
        bytes.len(),
        "{name}: the results file holds exactly the expected values"
    );
    results
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn golden_cases_every_layout_and_block_size() {
    let Some(exe) = emulator() else { return };
    let cases = all_golden();
    let results = run_cases(exe, &cases, &GOLDEN_CONFIGS, "golden");
    for (g, per_dtype) in cases.iter().zip(&results) {
        for (d, runs) in per_dtype.iter().enumerate() {
            let dtype = ["f64", "f32"][d];
            for (&(block, layout), r) in GOLDEN_CONFIGS.iter().zip(runs) {
                let what = format!("{} {dtype} block {block} layout {layout}", g.name);
                if d == 0 {
                    check_golden_f64(g, &r.loss, &r.grad, &what);
                } else {
                    check_golden_f32(g, &r.loss, &r.grad, &what);
                }
                // Layouts change addresses and block sizes the split of the work, never the
                // arithmetic.
                let (b0, l0) = GOLDEN_CONFIGS[0];
                assert_eq!(
                    bits(&r.loss),
                    bits(&runs[0].loss),
                    "{what}: loss bits differ from block {b0} layout {l0}"
                );
                assert_eq!(
                    bits(&r.grad),
                    bits(&runs[0].grad),
                    "{what}: gradient bits differ from block {b0} layout {l0}"
                );
            }
        }
    }
}

/// Samples whose gradient slice is NaN everywhere.
fn nan_slices(g: &Golden, grad: &[f64]) -> Vec<usize> {
    (0..g.n)
        .filter(|&b| (0..g.t).all(|t| (0..g.c).all(|c| grad[(t * g.n + b) * g.c + c].is_nan())))
        .collect()
}

/// `g` with some device-side values spoiled by `spoil`, and the same with reduction sum.
fn spoiled(g: &Golden, name: &str, spoil: impl Fn(&mut Golden)) -> [Golden; 2] {
    let mut none = g.clone();
    none.name = name.to_owned();
    spoil(&mut none);
    let mut sum = none.clone();
    sum.name = format!("{name}_sum");
    sum.reduction = CTC_REDUCTION_SUM;
    sum.grad_out = vec![1.0];
    [none, sum]
}

#[test]
fn invalid_device_values_poison_only_their_sample() {
    let Some(exe) = emulator() else { return };

    // reduction_none: N = 8, T = 30, C = 12, padded (8, 10), blank 0; upstream gradient 1 so
    // that reduction none and sum give the same gradient.
    let mut padded = load_golden(&golden_dir().join("reduction_none.json"));
    assert_eq!(
        (padded.n, padded.t, padded.c, padded.s, padded.blank),
        (8, 30, 12, 10, 0)
    );
    assert!(padded.padded && padded.target_lengths == [10, 9, 8, 4, 7, 7, 1, 4]);
    padded.grad_out = vec![1.0; padded.n];
    // The same problem with concatenated targets.
    let mut concat = padded.clone();
    concat.name = "reduction_none_concatenated".into();
    concat.padded = false;
    concat.targets = (0..padded.n)
        .flat_map(|b| padded.targets[b * 10..][..padded.target_lengths[b] as usize].to_vec())
        .collect();
    concat.s = concat.targets.len();
    let offset = |b: usize| padded.target_lengths[..b].iter().sum::<i64>() as usize;
    let (t, c) = (padded.t as i64, padded.c as i64);

    let mut cases = vec![padded.clone(), concat.clone()];
    let mut expect: Vec<(usize, Vec<usize>)> = Vec::new(); // (clean case, invalid samples)
    cases.extend(spoiled(&padded, "padded_spoiled", |g| {
        g.targets[10] = c; // sample 1: label C
        g.input_lengths[2] = t + 1; // sample 2: input length > T
        g.targets[3 * 10 + 1] = 0; // sample 3: the blank as a label
        g.target_lengths[4] = 11; // sample 4: target length > S
        g.input_lengths[5] = -1; // sample 5: negative input length
        g.target_lengths[6] = -2; // sample 6: negative target length
        g.targets[7 * 10 + 9] = 999; // sample 7: garbage past its length, never read
    }));
    expect.extend([(0, vec![1, 2, 3, 4, 5, 6]), (0, vec![1, 2, 3, 4, 5, 6])]);
    cases.extend(spoiled(&concat, "concat_spoiled", |g| {
        g.targets[offset(3)] = -1; // sample 3: negative label
        g.input_lengths[5] = t + 5; // sample 5: input length > T
        g.target_lengths[7] += 1; // sample 7: runs past the end of the targets
    }));
    expect.extend([(1, vec![3, 5, 7]), (1, vec![3, 5, 7])]);
    cases.extend(spoiled(&concat, "concat_negative", |g| {
        // A negative length leaves the offsets of every later sample undefined.
        g.target_lengths[4] = -3;
    }));
    expect.extend([(1, vec![4, 5, 6, 7]), (1, vec![4, 5, 6, 7])]);

    let results = run_cases(exe, &cases, &INVALID_CONFIGS, "invalid");
    for (d, dtype) in ["f64", "f32"].iter().enumerate() {
        for (k, &(block, layout)) in INVALID_CONFIGS.iter().enumerate() {
            let run = |i: usize| &results[i][d][k];
            let what = format!("{dtype} block {block} layout {layout}");
            // The clean runs: no NaN, and the two target layouts give the same bits.
            assert!(nan_slices(&padded, &run(0).grad).is_empty(), "{what}");
            assert!(run(0).loss.iter().all(|x| !x.is_nan()), "{what}");
            assert_eq!(
                bits(&run(0).loss),
                bits(&run(1).loss),
                "{what}: concatenated loss"
            );
            assert_eq!(
                bits(&run(0).grad),
                bits(&run(1).grad),
                "{what}: concatenated grad"
            );
            for (i, (clean, invalid)) in expect.iter().enumerate() {
                let g = &cases[i + 2];
                let (r, c) = (run(i + 2), run(*clean));
                let what = format!("{} {what}", g.name);
                assert_eq!(
                    &nan_slices(g, &r.grad),
                    invalid,
                    "{what}: NaN gradient slices"
                );
                if reduction_code(g) == 0 {
                    let nan: Vec<usize> = (0..g.n).filter(|&b| r.loss[b].is_nan()).collect();
                    assert_eq!(&nan, invalid, "{what}: NaN losses");
                } else {
                    assert!(r.loss[0].is_nan(), "{what}: the sum with invalid samples");
                }
                for b in (0..g.n).filter(|b| !invalid.contains(b)) {
                    if reduction_code(g) == 0 {
                        assert_eq!(
                            r.loss[b].to_bits(),
                            c.loss[b].to_bits(),
                            "{what}: loss[{b}]"
                        );
                    }
                    for i in (0..g.t).flat_map(|t| (0..g.c).map(move |k| (t * g.n + b) * g.c + k)) {
                        assert_eq!(
                            r.grad[i].to_bits(),
                            c.grad[i].to_bits(),
                            "{what}: sample {b} gradient"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn random_problems_against_the_scalar_reference() {
    let Some(exe) = emulator() else { return };
    run_emulator(exe, &["fuzz", "20240611", "300"], "fuzz.log", 600);
}

#[test]
fn random_problems_under_address_sanitizer() {
    let Some(exe) = asan_emulator() else { return };
    run_emulator(exe, &["fuzz", "7", "150"], "fuzz_asan.log", 300);
}

#[test]
fn a_parameter_struct_with_two_fields_swapped_does_not_compile() {
    // The launch arguments are the fields of one struct per kernel, whose offsets ctc.cu
    // asserts (as src/cuda/params.rs does on the Rust side): two fields of the same type in the
    // wrong order are a compile error, not a silent swap.
    if emulator().is_none() {
        return;
    }
    let source = std::fs::read_to_string(manifest_dir().join("src/cuda/kernels/ctc.cu")).unwrap();
    let fields =
        "    const int* in_len;\n    const int* tgt_len;\n    T* log_alpha;\n    T* nll;\n";
    let swapped =
        "    const int* tgt_len;\n    const int* in_len;\n    T* log_alpha;\n    T* nll;\n";
    assert_eq!(source.matches(fields).count(), 1, "AlphaParams as expected");
    let kernels = dir().join("ctc_swapped.cu");
    std::fs::write(&kernels, source.replace(fields, swapped)).unwrap();
    let main = dir().join("swapped.cpp");
    let emu = manifest_dir().join("tests/cuda_emu/emu.h");
    std::fs::write(
        &main,
        format!(
            "#include \"{}\"\n#include \"{}\"\n",
            emu.display(),
            kernels.display()
        ),
    )
    .unwrap();
    let out = Command::new(tool("CXX", "c++"))
        .args(["-std=c++20", "-fsyntax-only"])
        .arg(&main)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the swapped fields compiled");
    assert!(
        stderr.contains("AlphaParams_f32.in_len"),
        "the failure names the field:\n{stderr}"
    );
}

/// The kernels' float16 and bfloat16 conversions (ctc.cu's port of src/halfconv.rs) against the
/// `half` crate, bit for bit: every half value widened, and every float32 whose top 20 bits vary
/// (with the low bits that decide ties) narrowed, round to nearest even, subnormals, overflow and
/// NaN payloads included. (bfloat16 widens by a shift, as torch's: a signalling NaN stays one,
/// where the half crate quiets it.)
#[test]
fn the_kernels_half_conversions_match_the_half_crate() {
    let Some(exe) = emulator() else { return };
    let out = dir().join("halfconv.bin");
    run_emulator(exe, &["halfconv", out.to_str().unwrap()], "halfconv.log", 1);
    let bytes = std::fs::read(&out).unwrap();
    let (widened, narrowed) = bytes.split_at(65536 * 8);
    for (h, pair) in widened.chunks_exact(8).enumerate() {
        let word = |k: usize| u32::from_ne_bytes(pair[k..k + 4].try_into().unwrap());
        let want = half::f16::from_bits(h as u16).to_f32().to_bits();
        assert_eq!(word(0), want, "f16 {h:#06x}");
        let b = half::bf16::from_bits(h as u16);
        let want = if b.is_nan() {
            (h as u32) << 16
        } else {
            b.to_f32().to_bits()
        };
        assert_eq!(word(4), want, "bf16 {h:#06x}");
    }
    let lows = [0u32, 1, 0x7ff, 0x800, 0x801, 0xfff];
    assert_eq!(narrowed.len(), (1 << 20) * lows.len() * 4);
    let mut pairs = narrowed.chunks_exact(4);
    for hi in 0..(1u32 << 20) {
        for lo in lows {
            let f = f32::from_bits((hi << 12) | lo);
            let pair = pairs.next().unwrap();
            let got16 = u16::from_ne_bytes([pair[0], pair[1]]);
            let got_bf = u16::from_ne_bytes([pair[2], pair[3]]);
            let want = half::f16::from_f32(f).to_bits();
            assert_eq!(got16, want, "f16 of {f:e} ({:#010x})", f.to_bits());
            let want = half::bf16::from_f32(f).to_bits();
            assert_eq!(got_bf, want, "bf16 of {f:e} ({:#010x})", f.to_bits());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Forced alignment (ctc_align_<t>): the emulated kernel's paths and scores against the CPU
// backend's ctc_align, bit for bit.

/// Runs of the alignment cases: every layout of run_emu.cpp's align mode (its segment lengths
/// K: the host's, 1, 3 and longer than T), and other block sizes.
const ALIGN_CONFIGS: [(usize, usize); 7] =
    [(32, 0), (32, 1), (32, 2), (32, 3), (128, 2), (4, 0), (1, 1)];

/// An alignment problem as run_emu.cpp's data file holds it: (T, N, C) log-probabilities
/// row-major, padded (N, S) or concatenated targets, each sample's lengths.
#[derive(Clone, Debug)]
struct AlignCase {
    name: String,
    t: usize,
    n: usize,
    c: usize,
    blank: i32,
    padded: bool,
    s: usize,
    targets: Vec<i64>,
    input_lengths: Vec<i64>,
    target_lengths: Vec<i64>,
    lp: Vec<f64>,
}

impl AlignCase {
    /// Padded targets from each sample's (labels, input length).
    fn new(name: &str, t: usize, c: usize, lp: Vec<f64>, samples: &[(Vec<i64>, i64)]) -> Self {
        let n = samples.len();
        assert_eq!(lp.len(), t * n * c, "{name}");
        let s = samples
            .iter()
            .map(|(l, _)| l.len())
            .max()
            .unwrap_or(0)
            .max(1);
        let mut targets = vec![-5; n * s];
        for (b, (labels, _)) in samples.iter().enumerate() {
            targets[b * s..][..labels.len()].copy_from_slice(labels);
        }
        AlignCase {
            name: name.into(),
            t,
            n,
            c,
            blank: 0,
            padded: true,
            s,
            targets,
            input_lengths: samples.iter().map(|s| s.1).collect(),
            target_lengths: samples.iter().map(|s| s.0.len() as i64).collect(),
            lp,
        }
    }

    /// The same problem with concatenated targets.
    fn concatenated(&self, name: &str) -> Self {
        assert!(self.padded);
        let targets: Vec<i64> = (0..self.n)
            .flat_map(|b| self.targets[b * self.s..][..self.target_lengths[b] as usize].to_vec())
            .collect();
        AlignCase {
            name: name.into(),
            padded: false,
            s: targets.len(),
            targets,
            ..self.clone()
        }
    }
}

/// Coarse random log-probabilities (multiples of -0.5, exact in float32: ties are common) and
/// random labels in [1, C) for samples of (labels, input length).
fn tie_case(name: &str, t: usize, c: usize, samples: &[(usize, i64)], seed: u64) -> AlignCase {
    let mut rng = Rng(seed);
    let lp = (0..t * samples.len() * c)
        .map(|_| -0.5 * rng.range(0, 3) as f64)
        .collect();
    let samples: Vec<(Vec<i64>, i64)> = samples
        .iter()
        .map(|&(len, il)| ((0..len).map(|_| rng.range(1, c - 1) as i64).collect(), il))
        .collect();
    AlignCase::new(name, t, c, lp, &samples)
}

/// torchaudio's golden alignments (tests/data/golden-align), one sample each, with the path
/// torchaudio found.
fn golden_alignments() -> Vec<(AlignCase, Vec<i64>)> {
    let dir = manifest_dir().join("tests/data/golden-align");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 11, "the golden alignment set has eleven cases");
    files
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(file).unwrap();
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let int = |k: &str| v[k].as_i64().unwrap();
            let ints = |k: &str| -> Vec<i64> {
                let list = v[k].as_array().unwrap();
                list.iter().map(|x| x.as_i64().unwrap()).collect()
            };
            let lp = v["log_probs"].as_array().unwrap().iter();
            let lp = lp.flat_map(|row| row.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()));
            let (t, c) = (int("T") as usize, int("C") as usize);
            let name = file.file_stem().unwrap().to_string_lossy();
            let mut case =
                AlignCase::new(&name, t, c, lp.collect(), &[(ints("targets"), t as i64)]);
            case.blank = int("blank") as i32;
            (case, ints("path"))
        })
        .collect()
}

/// run_emu.cpp's data file (the loss's format; reduction, zero_infinity and upstream gradients
/// unused).
fn write_align_data(name: &str, cases: &[AlignCase]) -> PathBuf {
    let mut s = format!("ctc-emu-data 1\n{}\n", cases.len());
    for a in cases {
        let s_field = if a.padded { a.s } else { 0 };
        let (t, n, c, blank, padded) = (a.t, a.n, a.c, a.blank, u8::from(a.padded));
        let count = a.targets.len();
        writeln!(
            s,
            "case {} {t} {n} {c} {blank} 0 0 {padded} {s_field} {count} 0",
            a.name
        )
        .unwrap();
        for v in [&a.targets, &a.input_lengths, &a.target_lengths] {
            let line: Vec<String> = v.iter().map(i64::to_string).collect();
            writeln!(s, "{}", line.join(" ")).unwrap();
        }
        for row in a.lp.chunks(a.c.max(1)) {
            let line: Vec<String> = row.iter().map(|x| format!("{x:e}")).collect();
            writeln!(s, "{}", line.join(" ")).unwrap();
        }
    }
    let path = dir().join(name);
    std::fs::write(&path, s).unwrap();
    path
}

/// An alignment: the logical (T, N) path and the N scores as f64.
#[derive(Clone, Debug, PartialEq)]
struct Alignment {
    path: Vec<i64>,
    scores: Vec<f64>,
}

/// Runs `cases` in the emulator's align mode with `configs`; returns the alignments indexed
/// [case][dtype: 0 f64, 1 f32][config].
fn run_align_cases(
    exe: &Path,
    cases: &[AlignCase],
    configs: &[(usize, usize)],
    name: &str,
) -> Vec<[Vec<Alignment>; 2]> {
    let data = write_align_data(&format!("{name}.txt"), cases);
    let out = dir().join(format!("{name}.bin"));
    let list: Vec<String> = configs.iter().map(|(b, l)| format!("{b}:{l}")).collect();
    // Per case and dtype: one check per config and one for the garbage rerun; one at the end.
    let min = (cases.len() * 2 * (configs.len() + 1) + 1) as u32;
    let args = [
        "align",
        data.to_str().unwrap(),
        out.to_str().unwrap(),
        &list.join(","),
    ];
    run_emulator(exe, &args, &format!("{name}.log"), min);
    let bytes = std::fs::read(&out).unwrap();
    let mut words = bytes.chunks_exact(8).map(|c| c.try_into().unwrap());
    let mut results = Vec::new();
    for a in cases {
        let mut dtype = || -> Vec<Alignment> {
            configs
                .iter()
                .map(|_| Alignment {
                    path: words
                        .by_ref()
                        .take(a.t * a.n)
                        .map(i64::from_le_bytes)
                        .collect(),
                    scores: words.by_ref().take(a.n).map(f64::from_le_bytes).collect(),
                })
                .collect()
        };
        let f64s = dtype();
        results.push([f64s, dtype()]);
    }
    assert!(
        words.next().is_none(),
        "{name}: the results file holds exactly the expected values"
    );
    results
}

/// The CPU backend's `ctc_align` of `a` in `F`: path int64 (T, N), scores in `F`, one thread.
fn cpu_align<F: Float>(a: &AlignCase) -> Alignment {
    use ctc::ffi::*;
    let (t, n) = (a.t as i64, a.n as i64);
    let mut lp = Strided::<F>::new(&a.lp, a.t, a.n, a.c, true, Layout::Contiguous, f64::NAN);
    let (mut targets, mut il, mut tl) = (
        a.targets.clone(),
        a.input_lengths.clone(),
        a.target_lengths.clone(),
    );
    let mut path = vec![77i64; a.t * a.n];
    let mut scores = vec![F::from_f64(12345.0); a.n];
    let (tshape, tstrides) = match a.padded {
        true => (vec![n, a.s as i64], vec![a.s as i64, 1]),
        false => (vec![targets.len() as i64], vec![1]),
    };
    let t_lp = lp.tensor();
    let t_tg = tensor(targets.as_mut_ptr(), CTC_DTYPE_INT64, &tshape, &tstrides);
    let t_il = tensor(il.as_mut_ptr(), CTC_DTYPE_INT64, &[n], &[1]);
    let t_tl = tensor(tl.as_mut_ptr(), CTC_DTYPE_INT64, &[n], &[1]);
    let mut t_path = tensor(path.as_mut_ptr(), CTC_DTYPE_INT64, &[t, n], &[n, 1]);
    let mut t_scores = tensor(scores.as_mut_ptr(), F::DTYPE, &[n], &[1]);
    let mut opts = ctc_options_default();
    opts.blank = a.blank;
    opts.num_threads = 1;
    // SAFETY: host tensors describing live buffers of their shapes.
    let status = unsafe {
        ctc_align(
            &t_lp,
            &t_tg,
            &t_il,
            &t_tl,
            &opts,
            &mut t_path,
            &mut t_scores,
        )
    };
    assert_eq!(
        status,
        CTC_STATUS_SUCCESS,
        "{}: CPU ctc_align: {}",
        a.name,
        last_error()
    );
    Alignment {
        path,
        scores: scores.iter().map(|v| v.to_f64()).collect(),
    }
}

/// What the emulator's layout writes for a CPU score `s` (the kernel's, widened): layout 1 passes
/// float32 scores, layout 3 none.
fn layout_score(s: f64, layout: usize) -> f64 {
    match layout {
        1 => s as f32 as f64,
        3 => f64::NAN,
        _ => s,
    }
}

/// The emulator's alignment of `a` (dtype `d`: 0 f64, 1 f32; run `k` of `configs`) is `want`'s:
/// the same path, the same score bits.
fn check_alignment(a: &AlignCase, got: &Alignment, want: &Alignment, what: &str, layout: usize) {
    for b in 0..a.n {
        let column = |p: &[i64]| (0..a.t).map(|t| p[t * a.n + b]).collect::<Vec<_>>();
        assert_eq!(
            column(&got.path),
            column(&want.path),
            "{what}: sample {b}'s path"
        );
        let expect = layout_score(want.scores[b], layout);
        assert_eq!(
            got.scores[b].to_bits(),
            expect.to_bits(),
            "{what}: sample {b}'s score {} (CPU {})",
            got.scores[b],
            want.scores[b]
        );
    }
}

/// Runs `cases` in every config and checks them against the CPU backend.
fn align_against_the_cpu(exe: &Path, cases: &[AlignCase], configs: &[(usize, usize)], name: &str) {
    let results = run_align_cases(exe, cases, configs, name);
    for (a, per_dtype) in cases.iter().zip(&results) {
        let cpu = [cpu_align::<f64>(a), cpu_align::<f32>(a)];
        for (d, runs) in per_dtype.iter().enumerate() {
            for (&(block, layout), got) in configs.iter().zip(runs) {
                let what = format!(
                    "{} {} block {block} layout {layout}",
                    a.name,
                    ["f64", "f32"][d]
                );
                check_alignment(a, got, &cpu[d], &what, layout);
            }
        }
    }
}

/// Random batches with ties everywhere: mixed lengths (no frame, no label, a single frame,
/// exactly enough frames, too few for the repeats, more labels than frames), segment
/// boundaries, equal log-probabilities everywhere, -inf and NaN entries, another blank,
/// concatenated targets.
fn tie_cases() -> Vec<AlignCase> {
    let mixed = [
        (3, 12),
        (0, 12),
        (5, 9),
        (0, 0),
        (2, 0),
        (1, 1),
        (6, 6),
        (7, 6),
        (4, 11),
    ];
    let small = tie_case("ties_mixed", 12, 4, &mixed, 1);
    // Segment boundaries: the host's K for T_max = 50 is 29 in float32, 40 in float64.
    let bounds: Vec<(usize, i64)> = [50, 41, 40, 39, 30, 29, 28, 3, 2]
        .iter()
        .map(|&il| ((il as usize) / 3, il))
        .collect();
    let segments = tie_case("ties_segments", 50, 5, &bounds, 2);
    let mut flat = tie_case("all_equal", 16, 3, &[(4, 16), (6, 15), (1, 16)], 3);
    flat.lp.iter_mut().for_each(|x| *x = -1.0);
    let mut holes = tie_case(
        "inf_and_nan",
        14,
        5,
        &[(4, 14), (3, 14), (5, 13), (2, 14)],
        4,
    );
    let (n, c) = (holes.n, holes.c);
    for t in 0..holes.t {
        holes.lp[(t * n) * c + 1 + t % 4] = f64::NEG_INFINITY; // sample 0: holes in its labels
        if t % 5 == 2 {
            holes.lp[(t * n + 1) * c] = f64::NAN; // sample 1: NaN blanks
        }
    }
    let first = holes.targets[2 * holes.s] as usize;
    for t in 0..holes.t {
        holes.lp[(t * n + 2) * c + first] = f64::NEG_INFINITY; // sample 2: a label never seen
    }
    let mut other_blank = tie_case("blank_last", 15, 5, &[(4, 15), (5, 12), (3, 15)], 5);
    other_blank.blank = 4;
    for l in other_blank.targets.iter_mut() {
        *l = if *l == 4 { 0 } else { *l };
    }
    let concatenated = small.concatenated("ties_mixed_concatenated");
    vec![small, segments, flat, holes, other_blank, concatenated]
}

#[test]
fn align_golden_and_tie_cases_against_the_cpu() {
    let Some(exe) = emulator() else { return };
    let golden = golden_alignments();
    let mut cases: Vec<AlignCase> = golden.iter().map(|(a, _)| a.clone()).collect();
    cases.extend(tie_cases());
    align_against_the_cpu(exe, &cases, &ALIGN_CONFIGS, "align");
    // No ties in torchaudio's cases: the CPU's path is torchaudio's.
    for (a, path) in &golden {
        assert_eq!(
            &cpu_align::<f32>(a).path,
            path,
            "{}: torchaudio's path",
            a.name
        );
    }
}

/// Invalid device-side values in an alignment: path -1 and score -inf for their sample only (and
/// the later samples of concatenated targets after a negative length); every other sample keeps
/// the CPU's path and score bits.
#[test]
fn align_invalid_device_values_make_only_their_sample_impossible() {
    let Some(exe) = emulator() else { return };
    let samples = [
        (4, 12),
        (5, 12),
        (3, 10),
        (6, 12),
        (2, 9),
        (4, 12),
        (5, 11),
        (3, 12),
    ];
    let padded = tie_case("clean", 12, 6, &samples, 7);
    let concat = padded.concatenated("clean_concatenated");
    let s = padded.s;
    let offset = |b: usize| padded.target_lengths[..b].iter().sum::<i64>() as usize;
    let spoil = |base: &AlignCase, name: &str, f: &dyn Fn(&mut AlignCase)| {
        let mut a = base.clone();
        a.name = name.into();
        f(&mut a);
        a
    };
    let cases = [
        spoil(&padded, "padded_spoiled", &|a| {
            a.targets[s] = 6; // sample 1: label C
            a.input_lengths[2] = 13; // sample 2: input length > T
            a.targets[3 * s + 1] = 0; // sample 3: the blank as a label
            a.target_lengths[4] = s as i64 + 1; // sample 4: target length > S
            a.input_lengths[5] = -1; // sample 5: negative input length
            a.target_lengths[6] = -2; // sample 6: negative target length
            a.input_lengths[7] = i64::from(i32::MAX); // sample 7: input length far past T
        }),
        spoil(&concat, "concat_spoiled", &|a| {
            a.targets[offset(3)] = -1; // sample 3: negative label
            a.input_lengths[5] = 17; // sample 5: input length > T
            a.target_lengths[7] += 1; // sample 7: runs past the end of the targets
        }),
        spoil(&concat, "concat_negative", &|a| a.target_lengths[4] = -3),
    ];
    let invalid: [&[usize]; 3] = [&[1, 2, 3, 4, 5, 6, 7], &[3, 5, 7], &[4, 5, 6, 7]];
    let results = run_align_cases(exe, &cases, &ALIGN_CONFIGS[..4], "align_invalid");
    let clean = [cpu_align::<f64>(&padded), cpu_align::<f32>(&padded)];
    for ((a, per_dtype), bad) in cases.iter().zip(&results).zip(invalid) {
        for (d, runs) in per_dtype.iter().enumerate() {
            for (&(block, layout), got) in ALIGN_CONFIGS.iter().zip(runs) {
                let what = format!(
                    "{} {} block {block} layout {layout}",
                    a.name,
                    ["f64", "f32"][d]
                );
                let mut want = clean[d].clone();
                for &b in bad {
                    want.scores[b] = f64::NEG_INFINITY;
                    (0..a.t).for_each(|t| want.path[t * a.n + b] = -1);
                }
                check_alignment(a, got, &want, &what, layout);
            }
        }
    }
}

/// The emulator built with AddressSanitizer and UBSan (None when the compiler cannot).
fn asan_emulator() -> Option<&'static Path> {
    static EXE: OnceLock<Option<PathBuf>> = OnceLock::new();
    EXE.get_or_init(|| {
        emulator()?;
        let flags = [
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer",
        ];
        build("run_emu_asan", &flags)
    })
    .as_deref()
}

/// The alignment cases with ties and invalid values under AddressSanitizer: no read outside the
/// inputs either (the guard elements catch writes in every build).
#[test]
fn align_under_address_sanitizer() {
    let Some(exe) = asan_emulator() else { return };
    let mut cases = tie_cases();
    let mut spoiled = cases[0].clone();
    spoiled.name = "ties_mixed_spoiled".into();
    spoiled.input_lengths[0] = 13;
    spoiled.target_lengths[2] = 9;
    spoiled.targets[spoiled.s * 4] = 99;
    cases.push(spoiled.clone());
    let results = run_align_cases(exe, &cases, &ALIGN_CONFIGS[..4], "align_asan");
    for (a, per_dtype) in cases.iter().zip(&results).take(cases.len() - 1) {
        let cpu = [cpu_align::<f64>(a), cpu_align::<f32>(a)];
        for (d, runs) in per_dtype.iter().enumerate() {
            for (&(block, layout), got) in ALIGN_CONFIGS.iter().zip(runs) {
                let what = format!(
                    "{} {} block {block} layout {layout}",
                    a.name,
                    ["f64", "f32"][d]
                );
                check_alignment(a, got, &cpu[d], &what, layout);
            }
        }
    }
    for runs in &results[cases.len() - 1] {
        for got in runs {
            for b in [0, 2, 4] {
                assert!(got.scores[b] == f64::NEG_INFINITY || got.scores[b].is_nan());
                assert!((0..spoiled.t).all(|t| got.path[t * spoiled.n + b] == -1));
            }
        }
    }
}
