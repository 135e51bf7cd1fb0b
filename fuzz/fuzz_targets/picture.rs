//! Fuzz target `picture`: the body is `imgsearch::fuzzing::picture` (replayed on stable by the
//! library's tests over `fuzz/corpus/picture` and `fuzz/regressions/picture`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgsearch::fuzzing::picture(data));
