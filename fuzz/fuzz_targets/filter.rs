//! Fuzz target `filter`: the body is `imgsearch::fuzzing::filter` (replayed on stable by the
//! library's tests over `fuzz/corpus/filter` and `fuzz/regressions/filter`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgsearch::fuzzing::filter(data));
