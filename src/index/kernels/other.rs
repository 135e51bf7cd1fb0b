//! Stand-ins on architectures other than x86-64: every SIMD path reports absent, so the
//! dispatch in `super` always takes the portable loops and never reaches these bodies.
//! They mirror the signatures of `cpu`, `avx2` and `avx512`.

/// The feature checks of `super::cpu`, all false.
pub mod cpu {
    pub fn has_avx2() -> bool {
        false
    }
    pub fn has_avx2_fma() -> bool {
        false
    }
    pub fn has_f16c_fma() -> bool {
        false
    }
    pub fn has_vnni() -> bool {
        false
    }
    pub fn has_avx512f() -> bool {
        false
    }
}

/// The kernels of `super::avx2`, never called.
pub mod avx2 {
    use crate::index::kernels::f16;

    pub unsafe fn dot_f32(_: &[f32], _: &[f32]) -> f32 {
        unreachable!()
    }
    pub unsafe fn dot_f16(_: &[f16], _: &[f16]) -> f32 {
        unreachable!()
    }
    pub unsafe fn dot_f16_f32(_: &[f16], _: &[f32]) -> f32 {
        unreachable!()
    }
    pub unsafe fn dot_i8(_: &[i8], _: &[i8]) -> i32 {
        unreachable!()
    }
    pub unsafe fn dot_panels(_: &[&[f32]], _: &[f32], _: usize, _: usize, _: &mut [f32]) {
        unreachable!()
    }
    pub unsafe fn dot_i8_rows(_: &[i8], _: &[i8], _: &mut [i32]) {
        unreachable!()
    }
    pub unsafe fn dot_i8_pairs(_: &[i16], _: usize, _: &[i16], _: usize, _: usize, _: &mut [i32]) {
        unreachable!()
    }
    pub unsafe fn dot_f16_f32_rows(_: &[f16], _: &[f32], _: &mut [f32]) {
        unreachable!()
    }
}

/// The kernels of `super::avx512`, never called.
pub mod avx512 {
    pub unsafe fn dot_i8_quads(_: &[*const i8], _: usize, _: &[u8], _: usize, _: &mut [i32]) {
        unreachable!()
    }
    pub unsafe fn dot_panels_512(_: &[&[f32]], _: &[f32], _: usize, _: usize, _: &mut [f32]) {
        unreachable!()
    }
    pub unsafe fn for_each_at_least_f32(
        _: &[f32],
        _: usize,
        _: usize,
        _: &[f32],
        _: impl FnMut(usize, usize),
    ) {
        unreachable!()
    }
    pub unsafe fn for_each_at_least_i32(
        _: &[i32],
        _: usize,
        _: usize,
        _: &[i32],
        _: impl FnMut(usize, usize),
    ) {
        unreachable!()
    }
}
