//! Tokenizer entry points: load, encode, decode, vocabulary, streaming decode.

use std::sync::OnceLock;

use tokenizers::tokenizer::step_decode_stream;
use tokenizers::Tokenizer;

use crate::ffi::*;

/// A loaded tokenizer.json. `literal` is a copy with special-token parsing
/// turned off (HF: `encode_special_tokens = True`), made on first use so that
/// both kinds of encode stay `&self` and the handle can be shared by threads.
pub struct TextTokenizer {
    main: Tokenizer,
    literal: OnceLock<Tokenizer>,
}

impl TextTokenizer {
    fn literal(&self) -> &Tokenizer {
        self.literal.get_or_init(|| {
            let mut copy = self.main.clone();
            copy.set_encode_special_tokens(true);
            copy
        })
    }
}

fn utf8<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str, Failure> {
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let mut f = Failure::new(
            CODE_INVALID_UTF8,
            format!("{what} is not valid UTF-8: invalid byte 0x{:02x} at byte offset {at}", bytes[at]),
        );
        f.offset = at as u64;
        f
    })
}

/// # Safety
/// `path` points to `path_len` bytes; `out` and `err` are writable.
#[no_mangle]
pub unsafe extern "C" fn q3vl_tokenizer_load(
    path: *const u8,
    path_len: usize,
    out: *mut *mut TextTokenizer,
    err: *mut Q3vlTextError,
) -> i32 {
    guard(err, || {
        let path = utf8(slice(path, path_len), "tokenizer path")?;
        let bytes = std::fs::read(path).map_err(|e| Failure::new(CODE_IO, format!("cannot read: {e}")))?;
        let main = Tokenizer::from_bytes(&bytes).map_err(|e| Failure::new(CODE_FORMAT, e.to_string()))?;
        *out = Box::into_raw(Box::new(TextTokenizer { main, literal: OnceLock::new() }));
        Ok(())
    })
}

/// # Safety
/// `tok` comes from `q3vl_tokenizer_load` (or is null) and no stream still uses it.
#[no_mangle]
pub unsafe extern "C" fn q3vl_tokenizer_free(tok: *mut TextTokenizer) {
    if !tok.is_null() {
        drop(Box::from_raw(tok));
    }
}

/// `parse_special`: split out added/special tokens written in the text (HF's
/// default). `add_special`: let the post-processor add BOS/EOS-style tokens.
/// `lossy`: replace invalid UTF-8 by U+FFFD (maximal subparts, as Python's
/// `errors="replace"`) instead of failing with CODE_INVALID_UTF8.
///
/// # Safety
/// `tok` is live; `text` points to `text_len` bytes; `out`, `err` writable.
#[no_mangle]
pub unsafe extern "C" fn q3vl_tokenizer_encode(
    tok: *const TextTokenizer,
    text: *const u8,
    text_len: usize,
    parse_special: bool,
    add_special: bool,
    lossy: bool,
    out: *mut Q3vlTextIds,
    err: *mut Q3vlTextError,
) -> i32 {
    guard(err, || {
        let tok = &*tok;
        let bytes = slice(text, text_len);
        let text = if lossy { String::from_utf8_lossy(bytes) } else { utf8(bytes, "text")?.into() };
        let engine = if parse_special { &tok.main } else { tok.literal() };
        let encoding = engine
            .encode_fast(text.as_ref(), add_special)
            .map_err(|e| Failure::new(CODE_INTERNAL, format!("encode failed: {e}")))?;
        *out = ids_from(encoding.get_ids().to_vec());
        Ok(())
    })
}

/// # Safety
/// `tok` is live; `ids` points to `n` ids; `out`, `err` writable.
#[no_mangle]
pub unsafe extern "C" fn q3vl_tokenizer_decode(
    tok: *const TextTokenizer,
    ids: *const u32,
    n: usize,
    skip_special: bool,
    out: *mut Q3vlTextBytes,
    err: *mut Q3vlTextError,
) -> i32 {
    guard(err, || {
        let text = (*tok)
            .main
            .decode(slice(ids, n), skip_special)
            .map_err(|e| Failure::new(CODE_INTERNAL, format!("decode failed: {e}")))?;
        *out = bytes_from(text.into_bytes());
        Ok(())
    })
}

/// Returns CODE_NOT_FOUND (without touching `err`) when `id` has no token.
///
/// # Safety
/// `tok` is live; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn q3vl_tokenizer_id_to_token(
    tok: *const TextTokenizer,
    id: u32,
    out: *mut Q3vlTextBytes,
) -> i32 {
    match (*tok).main.id_to_token(id) {
        Some(token) => {
            *out = bytes_from(token.into_bytes());
            CODE_OK
        }
        None => CODE_NOT_FOUND,
    }
}

/// Returns CODE_NOT_FOUND when the token is not in the vocabulary.
///
/// # Safety
/// `tok` is live; `token` points to `len` bytes; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn q3vl_tokenizer_token_to_id(
    tok: *const TextTokenizer,
    token: *const u8,
    len: usize,
    out: *mut u32,
) -> i32 {
    let Ok(token) = std::str::from_utf8(slice(token, len)) else {
        return CODE_NOT_FOUND;
    };
    match (*tok).main.token_to_id(token) {
        Some(id) => {
            *out = id;
            CODE_OK
        }
        None => CODE_NOT_FOUND,
    }
}

/// Vocabulary size including added tokens (Python: `len(tokenizer)` /
/// `get_vocab_size(with_added_tokens=True)`).
///
/// # Safety
/// `tok` is live.
#[no_mangle]
pub unsafe extern "C" fn q3vl_tokenizer_vocab_size(tok: *const TextTokenizer) -> usize {
    (*tok).main.get_vocab_size(true)
}

/// The added tokens as JSON: `[{"id": 151643, "content": "...", "special": true}, ...]`, by id.
///
/// # Safety
/// `tok` is live; `out`, `err` writable.
#[no_mangle]
pub unsafe extern "C" fn q3vl_tokenizer_added_tokens(
    tok: *const TextTokenizer,
    out: *mut Q3vlTextBytes,
    err: *mut Q3vlTextError,
) -> i32 {
    guard(err, || {
        let mut added: Vec<_> = (*tok).main.get_added_tokens_decoder().into_iter().collect();
        added.sort_by_key(|(id, _)| *id);
        let list: Vec<serde_json::Value> = added
            .into_iter()
            .map(|(id, t)| serde_json::json!({"id": id, "content": t.content, "special": t.special}))
            .collect();
        let text = serde_json::to_vec(&list).map_err(|e| Failure::new(CODE_INTERNAL, e.to_string()))?;
        *out = bytes_from(text);
        Ok(())
    })
}

/// State of one streaming decode. It holds no reference to the tokenizer (each
/// step gets it passed in), so the C++ owner decides the lifetimes.
pub struct DecodeStreamState {
    skip_special: bool,
    // tokenizers' own incremental state (see `step_decode_stream`).
    window: Vec<u32>,
    prefix: String,
    prefix_index: usize,
    // Everything seen and emitted so far, for `flush`.
    all_ids: Vec<u32>,
    emitted: String,
}

#[no_mangle]
pub extern "C" fn q3vl_decode_stream_new(skip_special: bool) -> *mut DecodeStreamState {
    Box::into_raw(Box::new(DecodeStreamState {
        skip_special,
        window: Vec::new(),
        prefix: String::new(),
        prefix_index: 0,
        all_ids: Vec::new(),
        emitted: String::new(),
    }))
}

/// # Safety
/// `stream` comes from `q3vl_decode_stream_new` (or is null).
#[no_mangle]
pub unsafe extern "C" fn q3vl_decode_stream_free(stream: *mut DecodeStreamState) {
    if !stream.is_null() {
        drop(Box::from_raw(stream));
    }
}

/// Feeds one id; `out` receives the newly completed text (empty if the text
/// so far ends in an incomplete character, or in U+FFFD, which tokenizers
/// holds back).
///
/// # Safety
/// `stream` and `tok` are live; `out`, `err` writable.
#[no_mangle]
pub unsafe extern "C" fn q3vl_decode_stream_step(
    stream: *mut DecodeStreamState,
    tok: *const TextTokenizer,
    id: u32,
    out: *mut Q3vlTextBytes,
    err: *mut Q3vlTextError,
) -> i32 {
    guard(err, || {
        let s = &mut *stream;
        s.all_ids.push(id);
        let piece = step_decode_stream(
            &*(*tok).main,
            vec![id],
            s.skip_special,
            &mut s.window,
            &mut s.prefix,
            &mut s.prefix_index,
        )
        .map_err(|e| Failure::new(CODE_INTERNAL, format!("streaming decode failed at id {id}: {e}")))?;
        let piece = piece.unwrap_or_default();
        s.emitted.push_str(&piece);
        *out = bytes_from(piece.into_bytes());
        Ok(())
    })
}

/// Emits what the full decode of every id so far has beyond the text already
/// streamed (tokenizers' stream has no flush: it holds back a trailing U+FFFD).
///
/// # Safety
/// `stream` and `tok` are live; `out`, `err` writable.
#[no_mangle]
pub unsafe extern "C" fn q3vl_decode_stream_flush(
    stream: *mut DecodeStreamState,
    tok: *const TextTokenizer,
    out: *mut Q3vlTextBytes,
    err: *mut Q3vlTextError,
) -> i32 {
    guard(err, || {
        let s = &mut *stream;
        let full = (*tok)
            .main
            .decode(&s.all_ids, s.skip_special)
            .map_err(|e| Failure::new(CODE_INTERNAL, format!("decode failed: {e}")))?;
        let Some(rest) = full.strip_prefix(s.emitted.as_str()) else {
            return Err(Failure::new(
                CODE_INTERNAL,
                "streamed text is not a prefix of the full decode (tokenizer decoder is not prefix-stable)",
            ));
        };
        let rest = rest.to_string();
        s.emitted.push_str(&rest);
        // Later steps continue after everything emitted: restart tokenizers'
        // window at the current end so held-back bytes are not emitted twice.
        s.window = s.all_ids.clone();
        s.prefix = full;
        s.prefix_index = s.window.len();
        *out = bytes_from(rest.into_bytes());
        Ok(())
    })
}
