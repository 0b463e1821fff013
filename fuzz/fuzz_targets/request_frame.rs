//! Inbound text frames through `protocol::frame::parse_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| openclaw_actors::fuzzing::request_frame(data));
