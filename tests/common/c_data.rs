//! The data file `tests/c/test_ctc.c` reads (its format is documented at the top of that file):
//! golden cases converted to whitespace-separated text. Used by tests/c_api.rs and
//! tests/sanitizers.rs.

use super::{golden_dir, load_golden, Golden};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Appends one golden case in the format `tests/c/test_ctc.c` reads.
pub fn write_case(out: &mut String, g: &Golden) {
    assert!(g.batched, "{}: the C program takes batched cases", g.name);
    assert_eq!(
        g.reduction,
        ctc::ffi::CTC_REDUCTION_MEAN,
        "{}: mean reduction",
        g.name
    );
    assert_eq!(g.blank, 0, "{}: blank 0", g.name);
    assert!(!g.zero_infinity, "{}: zero_infinity false", g.name);
    assert_eq!(g.grad_out, [1.0], "{}: upstream gradient 1", g.name);
    assert_eq!(g.loss.len(), 1, "{}: one reduced loss", g.name);
    let n = g.t * g.n * g.c;
    assert_eq!(g.log_probs.len(), n);
    assert_eq!(g.grad.len(), n);
    let s = if g.padded { g.s } else { 0 };
    writeln!(
        out,
        "{} {} {} {} {} {} {}",
        g.name,
        g.t,
        g.n,
        g.c,
        u8::from(g.padded),
        s,
        g.targets.len()
    )
    .unwrap();
    let ints = |out: &mut String, v: &[i64]| {
        let line: Vec<String> = v.iter().map(i64::to_string).collect();
        writeln!(out, "{}", line.join(" ")).unwrap();
    };
    // `{:e}` prints the shortest text that reads back as the same f64 (strtod rounds exactly).
    let reals = |out: &mut String, v: &[f64]| {
        for row in v.chunks(g.c.max(1)) {
            let line: Vec<String> = row.iter().map(|x| format!("{x:e}")).collect();
            writeln!(out, "{}", line.join(" ")).unwrap();
        }
    };
    ints(out, &g.targets);
    ints(out, &g.input_lengths);
    ints(out, &g.target_lengths);
    reals(out, &g.log_probs);
    reals(out, &g.loss);
    reals(out, &g.grad);
}

/// Writes the data file of the given cases as `dir/name` and returns its path.
pub fn write_data(dir: &Path, name: &str, cases: &[Golden]) -> PathBuf {
    let mut text = format!("ctc-c-test-data 1\n{}\n", cases.len());
    for g in cases {
        write_case(&mut text, g);
    }
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the data file");
    path
}

/// The golden cases the C program runs: the torch documentation example (T = 50, N = 16,
/// C = 20) with padded (16, 30) targets and with concatenated targets.
pub fn golden_cases() -> Vec<Golden> {
    let cases: Vec<Golden> = ["seed_padded_mean.json", "seed_concat_mean.json"]
        .iter()
        .map(|f| load_golden(&golden_dir().join(f)))
        .collect();
    for g in &cases {
        assert_eq!(
            (g.t, g.n, g.c),
            (50, 16, 20),
            "{}: the torch documentation example",
            g.name
        );
    }
    assert!(
        cases[0].padded && cases[0].s == 30,
        "seed_padded_mean has (16, 30) targets"
    );
    assert!(
        !cases[1].padded,
        "seed_concat_mean has concatenated targets"
    );
    cases
}
