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
    /// `ctc_alpha_f32` / `ctc_alpha_f64`.
    AlphaParams, size 104 {
        log_probs: u64 = 0,
        labels: u64 = 8,
        in_len: u64 = 16,
        tgt_len: u64 = 24,
        log_alpha: u64 = 32,
        nll: u64 = 40,
        st: i64 = 48,
        sn: i64 = 56,
        sc: i64 = 64,
        width: i64 = 72,
        n: i32 = 80,
        max_time: i32 = 84,
        blank: i32 = 88,
        lmax: i32 = 92,
        alpha_rows: i32 = 96,
    }
);

kernel_params!(
    /// `ctc_beta_f32` / `ctc_beta_f64`.
    BetaParams, size 112 {
        log_probs: u64 = 0,
        labels: u64 = 8,
        in_len: u64 = 16,
        tgt_len: u64 = 24,
        log_alpha: u64 = 32,
        work: u64 = 40,
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
    /// `ctc_grad_f32` / `ctc_grad_f64`.
    GradParams, size 184 {
        log_probs: u64 = 0,
        next_same: u64 = 8,
        class_head: u64 = 16,
        in_len: u64 = 24,
        tgt_len: u64 = 32,
        log_alpha: u64 = 40,
        nll: u64 = 48,
        grad_loss: u64 = 56,
        grad: u64 = 64,
        st: i64 = 72,
        sn: i64 = 80,
        sc: i64 = 88,
        width: i64 = 96,
        grad_loss_stride: i64 = 104,
        gt: i64 = 112,
        gn: i64 = 120,
        gc: i64 = 128,
        n: i32 = 136,
        max_time: i32 = 140,
        c: i32 = 144,
        blank: i32 = 148,
        lmax: i32 = 152,
        alpha_rows: i32 = 156,
        reduction: i32 = 160,
        zero_infinity: i32 = 164,
        frames: i32 = 168,
        chunks: i32 = 172,
        exact: i32 = 176,
    }
);

kernel_params!(
    /// `ctc_reduce_f32` / `ctc_reduce_f64`.
    ReduceParams, size 48 {
        nll: u64 = 0,
        tgt_len: u64 = 8,
        loss: u64 = 16,
        loss_stride: i64 = 24,
        n: i32 = 32,
        reduction: i32 = 36,
        zero_infinity: i32 = 40,
    }
);

kernel_params!(
    /// `ctc_align_f32` / `ctc_align_f64`.
    AlignParams, size 168 {
        log_probs: u64 = 0,
        labels: u64 = 8,
        in_len: u64 = 16,
        tgt_len: u64 = 24,
        rows: u64 = 32,
        checkpoints: u64 = 40,
        codes: u64 = 48,
        path: u64 = 56,
        scores: u64 = 64,
        st: i64 = 72,
        sn: i64 = 80,
        sc: i64 = 88,
        width: i64 = 96,
        code_row: i64 = 104,
        path_st: i64 = 112,
        path_sn: i64 = 120,
        scores_stride: i64 = 128,
        n: i32 = 136,
        max_time: i32 = 140,
        blank: i32 = 144,
        lmax: i32 = 148,
        segment: i32 = 152,
        checkpoint_rows: i32 = 156,
        path_bytes: i32 = 160,
        scores_bytes: i32 = 164,
    }
);

/// The largest blocks of the sweeps (alpha, beta, align) and of the other kernels: the
/// `__launch_bounds__` of `kernels/ctc.cu` (`CTC_SWEEP_THREADS`, `CTC_GRID_THREADS`).
pub(crate) const SWEEP_THREADS: u32 = 512;
pub(crate) const GRID_THREADS: u32 = 256;

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
        let own = |s: &str| s == name || s == format!("{name}<float>");
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
        let ours: [(&str, Fields, usize); 7] = [
            ("OffsetsParams", OffsetsParams::FIELDS, OffsetsParams::SIZE),
            ("PrepareParams", PrepareParams::FIELDS, PrepareParams::SIZE),
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
    fn thread_bounds_match_the_kernel_source() {
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
    }
}
