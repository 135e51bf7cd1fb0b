//! Fuzz target `signature`: the body is `imgsearch::fuzzing::signature` (replayed on stable by the
//! library's tests over `fuzz/corpus/signature` and `fuzz/regressions/signature`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgsearch::fuzzing::signature(data));
