//! C ABI over Hugging Face `tokenizers` and `minijinja` for q3vl's text front end.
//!
//! The only consumer is the C++ code in src/text (declarations: ../rust_ffi.h,
//! kept in sync by hand). Conventions shared by every entry point:
//! - Inputs are (pointer, length) byte ranges; nothing is NUL-terminated.
//! - Returned text/ids are heap buffers owned by the caller, freed with
//!   `q3vl_text_bytes_free` / `q3vl_text_ids_free`.
//! - A call returns 0 on success; otherwise one of the `CODE_*` values, with a
//!   message (and line / byte offset where known) in the `Q3vlTextError` out-param.
//! - Panics are caught at the boundary and reported as `CODE_INTERNAL`.

mod ffi;
mod pyjson;
mod pyrepr;
mod template;
mod tokenizer;

pub use ffi::{q3vl_text_bytes_free, q3vl_text_ids_free};
pub use template::{q3vl_template_free, q3vl_template_new, q3vl_template_render};
pub use tokenizer::{
    q3vl_decode_stream_flush, q3vl_decode_stream_free, q3vl_decode_stream_new, q3vl_decode_stream_step,
    q3vl_tokenizer_added_tokens, q3vl_tokenizer_decode, q3vl_tokenizer_encode, q3vl_tokenizer_free,
    q3vl_tokenizer_id_to_token, q3vl_tokenizer_load, q3vl_tokenizer_token_to_id, q3vl_tokenizer_vocab_size,
};
