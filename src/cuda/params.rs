//! The parameter structs of the kernels of `kernels/ctc.cu`, one per kernel, field for field as
//! there. Each kernel takes its struct as its only parameter, so a launch passes one pointer and
//! no argument can go to the wrong position.
//!
//! Every offset and size is written here and in the `.cu` (its `CTC_FIELD` / `CTC_SIZE` lines):
//! both compilers assert them (a field moved on one side fails to build), and a test compares
//! the two lists. Device pointers are `u64` (`CUdeviceptr`), `int` is `i32`, `long long` is
//! `i64`.

/// Defines a `#[repr(C)]` struct whose field offsets and size are asserted at compile time, with
/// `FIELDS`, its (name, offset) list, for the comparison with the `.cu`.
macro_rules! kernel_params {
    ($(#[$doc:meta])* $name:ident, size $size:literal { $($field:ident: $ty:ty = $at:literal,)* }) => {
        $(#[$doc])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default)]
        pub(crate) struct $name {
            $(pub $field: $ty,)*
        }

        const _: () = {
            $(assert!(std::mem::offset_of!($name, $field) == $at);)*
            assert!(std::mem::size_of::<$name>() == $size);
        };

        impl $name {
            /// (field, byte offset), in declaration order.
            #[cfg(test)]
            pub(crate) const FIELDS: &'static [(&'static str, usize)] =
                &[$((stringify!($field), $at),)*];
            #[cfg(test)]
            pub(crate) const SIZE: usize = $size;
        }
    };
}

kernel_params!(
    /// `ctc_offsets`.
    OffsetsParams, size 32 {
        target_lengths: u64 = 0,
        offsets: u64 = 8,
        tl_stride: i64 = 16,
        target_lengths_bytes: i32 = 24,
        n: i32 = 28,
    }
);

kernel_params!(
    /// `ctc_prepare`.
    PrepareParams, size 152 {
        targets: u64 = 0,
        input_lengths: u64 = 8,
        target_lengths: u64 = 16,
        offsets: u64 = 24,
        labels: u64 = 32,
        next_same: u64 = 40,
        class_head: u64 = 48,
        in_len: u64 = 56,
        tgt_len: u64 = 64,
        targets_size: i64 = 72,
        tn: i64 = 80,
        ts: i64 = 88,
        il_stride: i64 = 96,
        tl_stride: i64 = 104,
        targets_bytes: i32 = 112,
        input_lengths_bytes: i32 = 116,
        target_lengths_bytes: i32 = 120,
        padded: i32 = 124,
        n: i32 = 128,
        max_time: i32 = 132,
        c: i32 = 136,
        blank: i32 = 140,
        lmax: i32 = 144,
    }
);

kernel_params!(
    /// `ctc_shift_<t>` (logits: each frame's max and log-sum-exp).
    ShiftParams, size 56 {
        logits: u64 = 0,
        shift: u64 = 8,
        st: i64 = 16,
        sn: i64 = 24,
        sc: i64 = 32,
        n: i32 = 40,
        max_time: i32 = 44,
        c: i32 = 48,
    }
);

kernel_params!(
    /// `ctc_alpha_<t>`, t = f32, f64, f16, bf16 (the type of log_probs).
    AlphaParams, size 112 {
        log_probs: u64 = 0,
        shift: u64 = 8,
        labels: u64 = 16,
        in_len: u64 = 24,
        tgt_len: u64 = 32,
        log_alpha: u64 = 40,
        nll: u64 = 48,
        st: i64 = 56,
        sn: i64 = 64,
        sc: i64 = 72,
        width: i64 = 80,
        n: i32 = 88,
        max_time: i32 = 92,
        blank: i32 = 96,
        lmax: i32 = 100,
        alpha_rows: i32 = 104,
    }
);

kernel_params!(
    /// `ctc_beta_<t>`.
    BetaParams, size 120 {
        log_probs: u64 = 0,
        shift: u64 = 8,
        labels: u64 = 16,
        in_len: u64 = 24,
        tgt_len: u64 = 32,
        log_alpha: u64 = 40,
        work: u64 = 48,
        nll: u64 = 56,
        st: i64 = 64,
        sn: i64 = 72,
        sc: i64 = 80,
        width: i64 = 88,
        n: i32 = 96,
        max_time: i32 = 100,
        blank: i32 = 104,
        lmax: i32 = 108,
        alpha_rows: i32 = 112,
    }
);

kernel_params!(
    /// `ctc_grad_<t>`.
    GradParams, size 200 {
        log_probs: u64 = 0,
        shift: u64 = 8,
        next_same: u64 = 16,
        class_head: u64 = 24,
        in_len: u64 = 32,
        tgt_len: u64 = 40,
        log_alpha: u64 = 48,
        nll: u64 = 56,
        grad_loss: u64 = 64,
        grad: u64 = 72,
        st: i64 = 80,
        sn: i64 = 88,
        sc: i64 = 96,
        width: i64 = 104,
        grad_loss_stride: i64 = 112,
        gt: i64 = 120,
        gn: i64 = 128,
        gc: i64 = 136,
        n: i32 = 144,
        max_time: i32 = 148,
        c: i32 = 152,
        blank: i32 = 156,
        lmax: i32 = 160,
        alpha_rows: i32 = 164,
        reduction: i32 = 168,
        zero_infinity: i32 = 172,
        frames: i32 = 176,
        chunks: i32 = 180,
        exact: i32 = 184,
        grad_dtype: i32 = 188,
        grad_loss_dtype: i32 = 192,
    }
);

kernel_params!(
    /// `ctc_reduce_f32` / `ctc_reduce_f64` (the type of the computation).
    ReduceParams, size 48 {
        nll: u64 = 0,
        tgt_len: u64 = 8,
        loss: u64 = 16,
        loss_stride: i64 = 24,
        n: i32 = 32,
        reduction: i32 = 36,
        zero_infinity: i32 = 40,
        loss_dtype: i32 = 44,
    }
);

kernel_params!(
    /// `ctc_align_<t>`.
    AlignParams, size 176 {
        log_probs: u64 = 0,
        shift: u64 = 8,
        labels: u64 = 16,
        in_len: u64 = 24,
        tgt_len: u64 = 32,
        rows: u64 = 40,
        checkpoints: u64 = 48,
        codes: u64 = 56,
        path: u64 = 64,
        scores: u64 = 72,
        st: i64 = 80,
        sn: i64 = 88,
        sc: i64 = 96,
        width: i64 = 104,
        code_row: i64 = 112,
        path_st: i64 = 120,
        path_sn: i64 = 128,
        scores_stride: i64 = 136,
        n: i32 = 144,
        max_time: i32 = 148,
        blank: i32 = 152,
        lmax: i32 = 156,
        segment: i32 = 160,
        checkpoint_rows: i32 = 164,
        path_bytes: i32 = 168,
        scores_dtype: i32 = 172,
    }
);

/// The floating type of an output or of the upstream gradient, as the kernels number them
/// (`CTC_REAL_*` of `kernels/ctc.cu`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub(crate) enum Real {
    F32 = 0,
    F64 = 1,
    F16 = 2,
    BF16 = 3,
}

impl Real {
    pub(crate) fn of(dtype: crate::types::DType) -> Real {
        use crate::types::DType;
        match dtype {
            DType::Float64 => Real::F64,
            DType::Float16 => Real::F16,
            DType::BFloat16 => Real::BF16,
            _ => Real::F32,
        }
    }

    /// All of them, with their names in the kernel source.
    #[cfg(test)]
    const ALL: [(Real, &'static str); 4] = [
        (Real::F32, "CTC_REAL_F32"),
        (Real::F64, "CTC_REAL_F64"),
        (Real::F16, "CTC_REAL_F16"),
        (Real::BF16, "CTC_REAL_BF16"),
    ];
}

/// The largest blocks of the sweeps (alpha, beta, align) and of the other kernels: the
/// `__launch_bounds__` of `kernels/ctc.cu` (`CTC_SWEEP_THREADS`, `CTC_GRID_THREADS`).
pub(crate) const SWEEP_THREADS: u32 = 512;
pub(crate) const GRID_THREADS: u32 = 256;
/// The partial sums of a frame in `ctc_shift` (`CTC_SHIFT_PARTS`): more threads would idle.
pub(crate) const SHIFT_PARTS: u32 = 128;

#[cfg(test)]
mod tests {
    use super::*;

    /// `CTC_FIELD(Struct, field, offset)` and `CTC_SIZE(Struct, size)` lines of the `.cu`, and
    /// its `#define NAME value` of the thread bounds.
    fn cu_layout(name: &str) -> (Vec<(String, usize)>, usize) {
        let src = crate::cuda::KERNEL_SOURCE;
        let args = |line: &str, macro_name: &str| -> Option<Vec<String>> {
            let rest = line.strip_prefix(macro_name)?.strip_prefix('(')?;
            let inner = rest.strip_suffix(");")?;
            Some(inner.split(',').map(|s| s.trim().to_owned()).collect())
        };
        let own = |s: &str| s == name || s == format!("{name}_f32");
        let mut fields = Vec::new();
        let mut size = 0;
        for line in src.lines() {
            if let Some(a) = args(line, "CTC_FIELD") {
                if own(&a[0]) {
                    fields.push((a[1].to_lowercase(), a[2].parse().unwrap()));
                }
            } else if let Some(a) = args(line, "CTC_SIZE") {
                if own(&a[0]) {
                    size = a[1].parse().unwrap();
                }
            }
        }
        (fields, size)
    }

    #[test]
    fn parameter_structs_match_the_kernel_source() {
        type Fields = &'static [(&'static str, usize)];
        let ours: [(&str, Fields, usize); 8] = [
            ("OffsetsParams", OffsetsParams::FIELDS, OffsetsParams::SIZE),
            ("PrepareParams", PrepareParams::FIELDS, PrepareParams::SIZE),
            ("ShiftParams", ShiftParams::FIELDS, ShiftParams::SIZE),
            ("AlphaParams", AlphaParams::FIELDS, AlphaParams::SIZE),
            ("BetaParams", BetaParams::FIELDS, BetaParams::SIZE),
            ("GradParams", GradParams::FIELDS, GradParams::SIZE),
            ("ReduceParams", ReduceParams::FIELDS, ReduceParams::SIZE),
            ("AlignParams", AlignParams::FIELDS, AlignParams::SIZE),
        ];
        for (name, fields, size) in ours {
            let (cu_fields, cu_size) = cu_layout(name);
            let fields: Vec<(String, usize)> =
                fields.iter().map(|&(f, at)| (f.to_owned(), at)).collect();
            assert_eq!(fields, cu_fields, "{name}: fields differ from ctc.cu");
            assert_eq!(size, cu_size, "{name}: size differs from ctc.cu");
        }
    }

    #[test]
    fn thread_bounds_and_type_codes_match_the_kernel_source() {
        let define = |name: &str| -> u32 {
            let prefix = format!("#define {name} ");
            crate::cuda::KERNEL_SOURCE
                .lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .unwrap_or_else(|| panic!("{name} is defined in ctc.cu"))
                .trim()
                .parse()
                .unwrap()
        };
        assert_eq!(define("CTC_SWEEP_THREADS"), SWEEP_THREADS);
        assert_eq!(define("CTC_GRID_THREADS"), GRID_THREADS);
        assert_eq!(define("CTC_SHIFT_PARTS"), SHIFT_PARTS);
        for (real, name) in Real::ALL {
            assert_eq!(define(name), real as u32, "{name}");
        }
    }
}
