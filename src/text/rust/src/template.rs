//! Chat-template entry points: a minijinja environment set up the way
//! transformers sets up Jinja2 for `apply_chat_template`
//! (transformers/utils/chat_template_utils.py, `_compile_jinja_template`):
//! trim_blocks + lstrip_blocks, no kept trailing newline, no autoescape,
//! loop controls, Python `json.dumps` as `tojson`, `raise_exception`,
//! `strftime_now`, plus pycompat for the Python str/dict methods templates call
//! and Python's printing of floats, booleans, None, lists and dicts.

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, Error, ErrorKind};

use crate::ffi::*;
use crate::pyjson::tojson_filter;
use crate::pyrepr::str_into;

/// `strftime(format)` on the local time, implemented by the C++ side with C's
/// strftime (which Python's `datetime.strftime` also calls). Writes at most
/// `cap` bytes to `out` and returns the length, 0 on failure.
pub type StrftimeFn = extern "C" fn(format: *const u8, format_len: usize, out: *mut u8, cap: usize) -> usize;

pub struct TextTemplate {
    env: Environment<'static>,
    name: String,
}

fn describe(err: &Error) -> String {
    let mut text = match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn failure(code: i32, err: &Error) -> Failure {
    let mut f = Failure::new(code, describe(err));
    f.line = err.line().unwrap_or(0) as u32;
    f
}

fn make_environment(strftime: StrftimeFn) -> Result<Environment<'static>, Error> {
    let mut env = Environment::new();
    env.set_syntax(SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).keep_trailing_newline(false).build()?);
    // minijinja would autoescape names ending in .html/.json/...; Jinja2 in
    // transformers never escapes.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.set_formatter(|out, _state, value| {
        let mut text = String::new();
        str_into(value, &mut text);
        out.write_str(&text).map_err(Error::from)
    });
    env.add_filter("tojson", tojson_filter);
    env.add_function("raise_exception", |message: String| -> Result<Value, Error> {
        Err(Error::new(ErrorKind::InvalidOperation, format!("raise_exception: {message}")))
    });
    env.add_function("strftime_now", move |format: String| -> Result<String, Error> {
        let mut buf = vec![0u8; 256 + 4 * format.len()];
        let n = strftime(format.as_ptr(), format.len(), buf.as_mut_ptr(), buf.len());
        buf.truncate(n.min(buf.len()));
        String::from_utf8(buf)
            .map_err(|_| Error::new(ErrorKind::InvalidOperation, "strftime_now: result is not UTF-8"))
    });
    Ok(env)
}

/// Compiles `source` under `name` (the name appears in error messages).
///
/// # Safety
/// Byte ranges are readable; `out`, `err` writable; `strftime` is callable
/// from any thread for the template's lifetime.
#[no_mangle]
pub unsafe extern "C" fn q3vl_template_new(
    name: *const u8,
    name_len: usize,
    source: *const u8,
    source_len: usize,
    strftime: StrftimeFn,
    out: *mut *mut TextTemplate,
    err: *mut Q3vlTextError,
) -> i32 {
    guard(err, || {
        let name = String::from_utf8_lossy(slice(name, name_len)).into_owned();
        let source = std::str::from_utf8(slice(source, source_len))
            .map_err(|e| Failure::new(CODE_INVALID_UTF8, format!("template is not valid UTF-8 at byte {}", e.valid_up_to())))?
            .to_string();
        let mut env = make_environment(strftime).map_err(|e| failure(CODE_INTERNAL, &e))?;
        env.add_template_owned(name.clone(), source).map_err(|e| failure(CODE_TEMPLATE_SYNTAX, &e))?;
        *out = Box::into_raw(Box::new(TextTemplate { env, name }));
        Ok(())
    })
}

/// # Safety
/// `tmpl` comes from `q3vl_template_new` (or is null).
#[no_mangle]
pub unsafe extern "C" fn q3vl_template_free(tmpl: *mut TextTemplate) {
    if !tmpl.is_null() {
        drop(Box::from_raw(tmpl));
    }
}

/// Renders with the variables of a JSON object (key order is kept, so tool
/// schemas print in the order they were given).
///
/// # Safety
/// `tmpl` is live; `context` points to `context_len` bytes; `out`, `err` writable.
#[no_mangle]
pub unsafe extern "C" fn q3vl_template_render(
    tmpl: *const TextTemplate,
    context: *const u8,
    context_len: usize,
    out: *mut Q3vlTextBytes,
    err: *mut Q3vlTextError,
) -> i32 {
    guard(err, || {
        let tmpl = &*tmpl;
        let context: serde_json::Value = serde_json::from_slice(slice(context, context_len))
            .map_err(|e| Failure::new(CODE_FORMAT, format!("template variables: {e}")))?;
        let template = tmpl.env.get_template(&tmpl.name).map_err(|e| failure(CODE_INTERNAL, &e))?;
        let text = template.render(Value::from(Serde(context))).map_err(|e| failure(CODE_TEMPLATE_RENDER, &e))?;
        *out = bytes_from(text.into_bytes());
        Ok(())
    })
}
