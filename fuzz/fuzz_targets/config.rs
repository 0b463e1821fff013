//! Config text through `config::load::parse_str` and `config::resolve_with`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| openclaw_actors::fuzzing::config(data));
