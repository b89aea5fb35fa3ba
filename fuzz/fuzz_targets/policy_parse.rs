//! Any text handed to the policy parser is accepted or refused with a message, never a panic.
#![no_main]

use cognate_policy::{Policy, PolicyUse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        for usage in [PolicyUse::Identity, PolicyUse::Resource, PolicyUse::Trust] {
            let _ = Policy::parse(text, usage);
        }
    }
});
