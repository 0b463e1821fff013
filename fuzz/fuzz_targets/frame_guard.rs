//! The pre-auth WebSocket frame scanner (`protocol/frame_guard.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| openclaw_actors::fuzzing::frame_guard(data));
