//! Parquet datasets through the `parquet` crate's row API (no Arrow): verl's preprocessed
//! files (`prompt` as chat messages, `reward_model.ground_truth`, `data_source`,
//! `extra_info`) and the Hugging Face datasets layouts TRL documents (`prompt` as a string or
//! as messages, the answer in a named column).
//!
//! Each row becomes a JSON object and goes through the same field mapping as a JSONL line,
//! so the two formats cannot drift apart; only the error's location differs (row group and
//! row instead of a line).

use std::collections::HashMap;
use std::path::Path;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::{Field, Row};
use serde_json::{Map, Value};

use crate::dataset::{DatasetConfig, parse_row};
use crate::error::TaskError;
use crate::item::TaskItem;

/// Reads every row of the Parquet file at `path` as a task item, in file order.
pub(crate) fn read_items(path: &Path, config: &DatasetConfig) -> Result<Vec<TaskItem>, TaskError> {
    let file = std::fs::File::open(path).map_err(|source| TaskError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let decode = |reason: String| {
        move |e: parquet::errors::ParquetError| TaskError::Parquet {
            path: path.to_path_buf(),
            reason,
            source: Some(Box::new(e)),
        }
    };
    let reader = SerializedFileReader::new(file).map_err(decode("not a readable file".into()))?;
    let mut items = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut row = 0usize;
    for g in 0..reader.num_row_groups() {
        let group = reader
            .get_row_group(g)
            .map_err(decode(format!("row group {g}")))?;
        let rows = group
            .get_row_iter(None)
            .map_err(decode(format!("row group {g}")))?;
        for record in rows {
            let record = record.map_err(decode(format!("row group {g}, row {row}")))?;
            let at = |column: String, reason: String| TaskError::ParquetRow {
                path: path.to_path_buf(),
                row_group: g,
                row,
                column,
                reason,
            };
            let object = row_to_json(&record, "").map_err(|(column, reason)| at(column, reason))?;
            let item =
                parse_row(object, config).map_err(|p| at(p.field().to_string(), p.reason()))?;
            if let Some(&first) = seen.get(&item.id) {
                let column = config.id_fields.join(" or ");
                return Err(at(
                    column,
                    format!("duplicate id {:?}, first seen in row {first}", item.id),
                ));
            }
            seen.insert(item.id.clone(), row);
            items.push(item);
            row += 1;
        }
    }
    Ok(items)
}

/// A row as a JSON object. `Err((column, reason))` names the (dotted) column of a value that
/// JSON cannot hold.
fn row_to_json(row: &Row, prefix: &str) -> Result<Map<String, Value>, (String, String)> {
    let mut out = Map::new();
    for (name, field) in row.get_column_iter() {
        let column = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let value = field_to_json(field, &column)?;
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// One Parquet value as JSON: integers and finite floats as numbers, strings and UTF-8
/// binary as strings, decimals, dates and times as their text, structs as objects, lists as
/// arrays, maps as objects (keys as text).
fn field_to_json(field: &Field, column: &str) -> Result<Value, (String, String)> {
    let number = |x: f64| {
        serde_json::Number::from_f64(x)
            .map(Value::Number)
            .ok_or_else(|| {
                (
                    column.to_string(),
                    format!("the float {x} has no JSON form (NaN or infinite)"),
                )
            })
    };
    Ok(match field {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Bool(*b),
        Field::Byte(n) => Value::from(*n),
        Field::Short(n) => Value::from(*n),
        Field::Int(n) => Value::from(*n),
        Field::Long(n) => Value::from(*n),
        Field::UByte(n) => Value::from(*n),
        Field::UShort(n) => Value::from(*n),
        Field::UInt(n) => Value::from(*n),
        Field::ULong(n) => Value::from(*n),
        Field::Float16(x) => number(f64::from(*x))?,
        Field::Float(x) => number(f64::from(*x))?,
        Field::Double(x) => number(*x)?,
        Field::Str(s) => Value::String(s.clone()),
        Field::Bytes(b) => match std::str::from_utf8(b.data()) {
            Ok(s) => Value::String(s.to_string()),
            Err(e) => {
                return Err((
                    column.to_string(),
                    format!("a binary value that is not UTF-8 text ({e})"),
                ));
            }
        },
        Field::Decimal(_)
        | Field::Date(_)
        | Field::TimeMillis(_)
        | Field::TimeMicros(_)
        | Field::TimestampMillis(_)
        | Field::TimestampMicros(_) => Value::String(field.to_string()),
        Field::Group(row) => Value::Object(row_to_json(row, column)?),
        Field::ListInternal(list) => Value::Array(
            list.elements()
                .iter()
                .enumerate()
                .map(|(i, f)| field_to_json(f, &format!("{column}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Field::MapInternal(map) => {
            let mut out = Map::new();
            for (k, v) in map.entries() {
                let key = match k {
                    Field::Str(s) => s.clone(),
                    other => other.to_string(),
                };
                let value = field_to_json(v, &format!("{column}.{key}"))?;
                out.insert(key, value);
            }
            Value::Object(out)
        }
    })
}
