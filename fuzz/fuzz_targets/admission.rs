//! Forwarded-header attribution and admission (`guard::Policy::admit`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| openclaw_actors::fuzzing::admission(data));
