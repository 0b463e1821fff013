//! `connect` params through the pure auth decision (`auth::rules::decide`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| openclaw_actors::fuzzing::connect_auth(data));
