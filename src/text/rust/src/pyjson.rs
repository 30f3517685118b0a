//! `json.dumps` as transformers' `tojson` filter calls it
//! (`json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)`),
//! on minijinja values. Jinja2's own tojson (and minijinja's) HTML-escape
//! `< > & '` and print floats differently, so every tool schema would differ.

use std::fmt::Write;

use minijinja::value::{Kwargs, Rest, Value, ValueKind};
use minijinja::{Error, ErrorKind};

use crate::pyrepr::{as_float, float_repr};

pub struct DumpOptions {
    pub ensure_ascii: bool,
    /// `None`: one line; `Some(s)`: newline + `s` per nesting level (Python's
    /// `indent=n` is `s = n spaces`).
    pub indent: Option<String>,
    pub item_separator: String,
    pub key_separator: String,
    pub sort_keys: bool,
}

fn not_serializable(value: &Value) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("tojson: object of type {} is not JSON serializable", value.kind()),
    )
}

fn write_string(s: &str, ensure_ascii: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            // ensure_ascii escapes everything outside ' '..='~' (so 0x7f too),
            // astral characters as UTF-16 surrogate pairs.
            c if ensure_ascii && (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{:04x}", unit);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn float_json(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity".into() } else { "-Infinity".into() }
    } else {
        float_repr(f)
    }
}

/// Dict keys become strings the way Python's encoder converts them.
fn key_text(key: &Value) -> Result<String, Error> {
    match key.kind() {
        ValueKind::String => Ok(key.as_str().unwrap_or_default().to_string()),
        ValueKind::Bool => Ok(if key.is_true() { "true" } else { "false" }.to_string()),
        ValueKind::None => Ok("null".to_string()),
        ValueKind::Number => Ok(match as_float(key) {
            Some(f) => float_json(f),
            None => key.to_string(),
        }),
        _ => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("tojson: keys must be str, int, float, bool or None, not {}", key.kind()),
        )),
    }
}

fn newline(opts: &DumpOptions, level: usize, out: &mut String) {
    if let Some(indent) = &opts.indent {
        out.push('\n');
        for _ in 0..level {
            out.push_str(indent);
        }
    }
}

fn write_value(value: &Value, opts: &DumpOptions, level: usize, out: &mut String) -> Result<(), Error> {
    match value.kind() {
        ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => match as_float(value) {
            Some(f) => out.push_str(&float_json(f)),
            None => {
                let _ = write!(out, "{value}");
            }
        },
        ValueKind::String => write_string(value.as_str().unwrap_or_default(), opts.ensure_ascii, out),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&opts.item_separator);
                }
                newline(opts, level + 1, out);
                write_value(item, opts, level + 1, out)?;
            }
            newline(opts, level, out);
            out.push(']');
        }
        ValueKind::Map => {
            let mut entries = Vec::new();
            for key in value.try_iter()? {
                let item = value.get_item(&key)?;
                entries.push((key_text(&key)?, item));
            }
            if entries.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            if opts.sort_keys {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
            }
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(&opts.item_separator);
                }
                newline(opts, level + 1, out);
                write_string(key, opts.ensure_ascii, out);
                out.push_str(&opts.key_separator);
                write_value(item, opts, level + 1, out)?;
            }
            newline(opts, level, out);
            out.push('}');
        }
        _ => return Err(not_serializable(value)),
    }
    Ok(())
}

pub fn dumps(value: &Value, opts: &DumpOptions) -> Result<String, Error> {
    let mut out = String::new();
    write_value(value, opts, 0, &mut out)?;
    Ok(out)
}

fn bad_argument(name: &str, want: &str, got: &Value) -> Error {
    Error::new(ErrorKind::InvalidOperation, format!("tojson: {name}: expected {want}, got {}", got.kind()))
}

/// The filter: `x | tojson(ensure_ascii=False, indent=None, separators=None, sort_keys=False)`,
/// arguments by position or by name as in Python.
pub fn tojson_filter(value: Value, positional: Rest<Value>, kwargs: Kwargs) -> Result<String, Error> {
    if positional.len() > 4 {
        return Err(Error::new(ErrorKind::TooManyArguments, "tojson: at most 4 positional arguments"));
    }
    let mut given: [Value; 4] = Default::default();
    for (slot, v) in positional.iter().enumerate() {
        given[slot] = v.clone();
    }
    for (slot, name) in ["ensure_ascii", "indent", "separators", "sort_keys"].iter().enumerate() {
        if let Some(v) = kwargs.get::<Option<Value>>(name)? {
            given[slot] = v;
        }
    }
    kwargs.assert_all_used()?;
    let [ensure_ascii, indent, separators, sort_keys] = given;
    let set = |v: &Value| !v.is_undefined() && !v.is_none();
    let indent = if !set(&indent) {
        None
    } else if let Some(s) = indent.as_str() {
        Some(s.to_string())
    } else if let Some(n) = indent.as_i64() {
        Some(" ".repeat(n.max(0) as usize))
    } else {
        return Err(bad_argument("indent", "an integer or a string", &indent));
    };
    let (item_separator, key_separator) = if set(&separators) {
        let parts: Vec<Value> = separators.try_iter()?.collect();
        match (parts.first().and_then(|v| v.as_str()), parts.get(1).and_then(|v| v.as_str()), parts.len()) {
            (Some(item), Some(key), 2) => (item.to_string(), key.to_string()),
            _ => return Err(bad_argument("separators", "a pair of strings", &separators)),
        }
    } else if indent.is_some() {
        (",".to_string(), ": ".to_string())
    } else {
        (", ".to_string(), ": ".to_string())
    };
    let opts = DumpOptions {
        ensure_ascii: set(&ensure_ascii) && ensure_ascii.is_true(),
        indent,
        item_separator,
        key_separator,
        sort_keys: set(&sort_keys) && sort_keys.is_true(),
    };
    dumps(&value, &opts)
}
