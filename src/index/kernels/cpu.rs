//! Which instruction sets this CPU has: the checks the dispatch in `super` runs before
//! calling into `avx2` or `avx512` (std caches the answers: one relaxed load per check).

#[inline]
pub fn has_avx2() -> bool {
    is_x86_feature_detected!("avx2")
}

#[inline]
pub fn has_avx2_fma() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

#[inline]
pub fn has_f16c_fma() -> bool {
    has_avx2_fma() && is_x86_feature_detected!("f16c")
}

#[inline]
pub fn has_avx512f() -> bool {
    is_x86_feature_detected!("avx512f")
}

/// AVX2 and `vpdpbusd` on 512-bit registers (AVX-512F, BW and VNNI).
pub fn has_vnni() -> bool {
    has_avx2()
        && has_avx512f()
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vnni")
}
