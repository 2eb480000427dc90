//! Why: `resp::parse_command` reads untrusted bytes off every client socket
//! (and the append-only file at start-up), and TCP splits them anywhere.
//! It must never panic, never invent bytes, respect its `Limits`, and give
//! the same commands however the stream was chunked.
//!
//! Input layout: `[chunk seed][limits flag|max_bulk_len][max_args][max_inline_len]`
//! then the stream itself.
#![no_main]

use bunbase_core::kv::resp::{Limits, parse_command};
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;

/// Everything `parse_command` produced from one stream.
#[derive(Debug, PartialEq)]
struct Outcome {
    commands: Vec<Vec<Bytes>>,
    /// Parsing stopped on a protocol error (the connection would close).
    failed: bool,
    /// Bytes left unconsumed (only meaningful when `!failed`).
    rest: Vec<u8>,
}

/// Takes every complete command off `buf`, checking each call's contract.
/// Returns false once a protocol error was reported.
fn drain(buf: &mut BytesMut, limits: &Limits, commands: &mut Vec<Vec<Bytes>>) -> bool {
    loop {
        let before = buf.clone();
        match parse_command(buf, limits) {
            Ok(None) => {
                assert_eq!(*buf, before, "Ok(None) must not consume anything");
                return true;
            }
            Err(_) => return false,
            Ok(Some(args)) => {
                let consumed = before.len() - buf.len();
                assert!(consumed > 0, "a command must consume bytes");
                let payload: usize = args.iter().map(Bytes::len).sum();
                assert!(payload <= consumed, "command larger than its frame");
                assert!(args.len() <= limits.max_args, "max_args ignored");
                if before[0] == b'*' {
                    assert!(
                        args.iter().all(|a| a.len() <= limits.max_bulk_len),
                        "max_bulk_len ignored"
                    );
                } else {
                    // The inline line (up to, not including, '\n').
                    assert!(
                        consumed - 1 <= limits.max_inline_len,
                        "max_inline_len ignored"
                    );
                }
                commands.push(args);
            }
        }
    }
}

/// Feeds `input` to the parser in chunks of the given sizes (cycled).
fn parse_chunked(input: &[u8], limits: &Limits, mut sizes: impl FnMut() -> usize) -> Outcome {
    let mut buf = BytesMut::new();
    let mut commands = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(sizes().clamp(1, rest.len()));
        rest = tail;
        buf.extend_from_slice(chunk);
        if !drain(&mut buf, limits, &mut commands) {
            return Outcome {
                commands,
                failed: true,
                rest: Vec::new(),
            };
        }
    }
    Outcome {
        commands,
        failed: false,
        rest: buf.to_vec(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((header, input)) = data.split_first_chunk::<4>() else {
        return;
    };
    let limits = if header[1] & 1 == 0 {
        Limits::default()
    } else {
        Limits {
            max_bulk_len: usize::from(header[1] >> 1),
            max_args: usize::from(header[2] % 32),
            max_inline_len: usize::from(header[3]),
        }
    };

    let whole = parse_chunked(input, &limits, || usize::MAX);
    let byte_by_byte = parse_chunked(input, &limits, || 1);
    // Pseudo-random chunk sizes 1..=16 from the seed byte.
    let mut state = u32::from(header[0]) | 0x100;
    let chunked = parse_chunked(input, &limits, || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 16) as usize + 1
    });

    assert_eq!(whole, byte_by_byte, "whole buffer vs byte by byte");
    assert_eq!(whole, chunked, "whole buffer vs chunked");
});
