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
//!   elements of run_emu.cpp catch in every build).
//!
//! Skipped, with the reason printed, when there is no C++20 compiler (`$CXX`, default `c++`).

mod common;

use common::native::{
    manifest_dir, native_builds_possible, run_ok, show, skip, summary, tmp_dir, tool, STRICT,
};
use common::{all_golden, check_golden_f32, check_golden_f64, golden_dir, load_golden, Golden};
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
    if emulator().is_none() {
        return;
    }
    let flags = [
        "-fsanitize=address,undefined",
        "-fno-sanitize-recover=all",
        "-fno-omit-frame-pointer",
    ];
    let Some(exe) = build("run_emu_asan", &flags) else {
        return;
    };
    run_emulator(&exe, &["fuzz", "7", "150"], "fuzz_asan.log", 300);
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
        stderr.contains("AlphaParams<float>.in_len"),
        "the failure names the field:\n{stderr}"
    );
}
