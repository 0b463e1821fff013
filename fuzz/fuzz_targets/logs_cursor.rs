//! `logs.tail` cursor paging (`session::logtail`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| openclaw_actors::fuzzing::logs_cursor(data));
