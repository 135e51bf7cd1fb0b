//! The columns of a part (see the module header) and the conversion of rows to and
//! from Arrow record batches. Reading is lenient about what an input file (a manifest
//! of pictures to extract, made by other tools) holds: optional columns may be
//! missing, and numbers and text of other Arrow types are cast to the part's.

use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Int32Builder, StringBuilder, UInt32Builder,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, FixedSizeListArray, Float32Array, Int32Array,
    RecordBatch, StringArray, UInt32Array,
};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::{ManifestError, PartRow, Result};

/// Names of IntAttr..IntAttr4 and StrAttr..StrAttr4 columns.
const INT_ATTRS: [&str; 4] = ["int_attr", "int_attr2", "int_attr3", "int_attr4"];
const STR_ATTRS: [&str; 4] = ["str_attr", "str_attr2", "str_attr3", "str_attr4"];

/// The schema of a part of vectors of length `dimension`.
pub(super) fn schema(dimension: usize) -> SchemaRef {
    let text = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
    let mut fields = vec![
        text("product_id", false),
        text("pic_name", false),
        text("path", false),
        text("custom_content", true),
    ];
    fields.extend(
        INT_ATTRS
            .iter()
            .map(|n| Field::new(*n, DataType::Int32, true)),
    );
    fields.extend(STR_ATTRS.iter().map(|n| text(n, true)));
    fields.extend([
        Field::new("crop", DataType::Boolean, false),
        text("region", true),
        Field::new("category_id", DataType::UInt32, true),
        text("subject_region", true),
        Field::new("vector", vector_type(dimension), true),
        Field::new("local_features", DataType::Binary, true),
        Field::new("thumbnail", DataType::Binary, true),
        text("error", true),
    ]);
    Arc::new(Schema::new(fields))
}

fn vector_type(dimension: usize) -> DataType {
    DataType::FixedSizeList(
        Arc::new(Field::new_list_field(DataType::Float32, false)),
        dimension as i32,
    )
}

/// Rows as a record batch of [`schema`]`(dimension)`; a row whose vector is not of that
/// length is refused.
pub(super) fn to_batch(rows: &[PartRow], dimension: usize) -> Result<RecordBatch> {
    let strings = |get: &dyn Fn(&PartRow) -> Option<&str>| -> ArrayRef {
        let mut b = StringBuilder::new();
        rows.iter().for_each(|r| b.append_option(get(r)));
        Arc::new(b.finish())
    };
    let binaries = |get: &dyn Fn(&PartRow) -> Option<&[u8]>| -> ArrayRef {
        let mut b = BinaryBuilder::new();
        rows.iter().for_each(|r| b.append_option(get(r)));
        Arc::new(b.finish())
    };
    let mut columns: Vec<ArrayRef> = vec![
        strings(&|r| Some(&r.product_id)),
        strings(&|r| Some(&r.pic_name)),
        strings(&|r| Some(&r.path)),
        strings(&|r| r.custom_content.as_deref()),
    ];
    for i in 0..4 {
        let mut b = Int32Builder::new();
        rows.iter().for_each(|r| b.append_option(r.int_attrs[i]));
        columns.push(Arc::new(b.finish()));
    }
    for i in 0..4 {
        columns.push(strings(&|r| r.str_attrs[i].as_deref()));
    }
    let mut crop = BooleanBuilder::new();
    rows.iter().for_each(|r| crop.append_value(r.crop));
    columns.push(Arc::new(crop.finish()));
    columns.push(strings(&|r| r.region.as_deref()));
    let mut category = UInt32Builder::new();
    rows.iter()
        .for_each(|r| category.append_option(r.category_id));
    columns.push(Arc::new(category.finish()));
    columns.push(strings(&|r| r.subject_region.as_deref()));
    columns.push(vectors(rows, dimension)?);
    columns.push(binaries(&|r| r.local_features.as_deref()));
    columns.push(binaries(&|r| r.thumbnail.as_deref()));
    columns.push(strings(&|r| r.error.as_deref()));
    RecordBatch::try_new(schema(dimension), columns).map_err(|e| ManifestError::Columns {
        path: String::new(),
        reason: e.to_string(),
    })
}

/// The vector column: a null row still takes `dimension` (zero) values.
fn vectors(rows: &[PartRow], dimension: usize) -> Result<ArrayRef> {
    let mut values = Vec::with_capacity(rows.len() * dimension);
    let mut valid = Vec::with_capacity(rows.len());
    for row in rows {
        match &row.vector {
            Some(v) if v.len() == dimension => values.extend_from_slice(v),
            Some(v) => {
                return Err(ManifestError::Mismatch {
                    path: row.path.clone(),
                    reason: format!("a vector of {} values, the part holds {dimension}", v.len()),
                })
            }
            None => values.resize(values.len() + dimension, 0.0),
        }
        valid.push(row.vector.is_some());
    }
    let list = FixedSizeListArray::try_new(
        Arc::new(Field::new_list_field(DataType::Float32, false)),
        dimension as i32,
        Arc::new(Float32Array::from(values)),
        Some(NullBuffer::from(valid)),
    )
    .map_err(|e| ManifestError::Columns {
        path: String::new(),
        reason: e.to_string(),
    })?;
    Ok(Arc::new(list))
}

/// A batch's rows. `product_id`, `pic_name` and `path` are required, the other columns
/// optional (`crop_default` where no crop is given); `dimension` (when given) is the
/// vector length the column must have.
pub(super) fn from_batch(
    batch: &RecordBatch,
    file: &Path,
    dimension: Option<usize>,
    crop_default: bool,
) -> Result<Vec<PartRow>> {
    let bad = |reason: String| ManifestError::Columns {
        path: file.display().to_string(),
        reason,
    };
    let column = |name: &str, to: &DataType| -> Result<Option<ArrayRef>> {
        match batch.column_by_name(name) {
            None => Ok(None),
            Some(c) if c.data_type() == to => Ok(Some(c.clone())),
            Some(c) => arrow_cast::cast(c, to)
                .map(Some)
                .map_err(|e| bad(format!("column {name}: {e}"))),
        }
    };
    let texts = |name: &str| -> Result<Option<StringArray>> {
        Ok(column(name, &DataType::Utf8)?
            .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned()))
    };
    let required = |name: &str| texts(name)?.ok_or_else(|| bad(format!("no {name} column")));
    let text_at = |c: &Option<StringArray>, i: usize| {
        c.as_ref()
            .filter(|c| c.is_valid(i))
            .map(|c| c.value(i).to_string())
    };
    let (product_id, pic_name, path) = (
        Some(required("product_id")?),
        Some(required("pic_name")?),
        Some(required("path")?),
    );
    let custom_content = texts("custom_content")?;
    let mut ints: Vec<Option<Int32Array>> = Vec::new();
    for name in INT_ATTRS {
        ints.push(
            column(name, &DataType::Int32)?
                .and_then(|c| c.as_any().downcast_ref::<Int32Array>().cloned()),
        );
    }
    let mut strs = Vec::new();
    for name in STR_ATTRS {
        strs.push(texts(name)?);
    }
    let crop = column("crop", &DataType::Boolean)?
        .and_then(|c| c.as_any().downcast_ref::<BooleanArray>().cloned());
    let region = texts("region")?;
    let category = column("category_id", &DataType::UInt32)?
        .and_then(|c| c.as_any().downcast_ref::<UInt32Array>().cloned());
    let subject_region = texts("subject_region")?;
    let vector = match (batch.column_by_name("vector"), dimension) {
        (Some(c), Some(d)) if c.data_type() != &vector_type(d) => {
            return Err(bad(format!(
                "vector column of type {}, expected {}",
                c.data_type(),
                vector_type(d)
            )))
        }
        (Some(c), _) => c.as_any().downcast_ref::<FixedSizeListArray>().cloned(),
        (None, _) => None,
    };
    let binary = |name: &str| -> Result<Option<BinaryArray>> {
        Ok(column(name, &DataType::Binary)?
            .and_then(|c| c.as_any().downcast_ref::<BinaryArray>().cloned()))
    };
    let (local_features, thumbnail) = (binary("local_features")?, binary("thumbnail")?);
    let bytes_at = |c: &Option<BinaryArray>, i: usize| {
        c.as_ref()
            .filter(|c| c.is_valid(i))
            .map(|c| c.value(i).to_vec())
    };
    let error = texts("error")?;
    let mut rows = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        rows.push(PartRow {
            product_id: text_at(&product_id, i).unwrap_or_default(),
            pic_name: text_at(&pic_name, i).unwrap_or_default(),
            path: text_at(&path, i).unwrap_or_default(),
            custom_content: text_at(&custom_content, i),
            int_attrs: std::array::from_fn(|k| {
                ints[k]
                    .as_ref()
                    .filter(|c| c.is_valid(i))
                    .map(|c| c.value(i))
            }),
            str_attrs: std::array::from_fn(|k| text_at(&strs[k], i)),
            crop: match &crop {
                Some(c) if c.is_valid(i) => c.value(i),
                _ => crop_default,
            },
            region: text_at(&region, i),
            category_id: category
                .as_ref()
                .filter(|c| c.is_valid(i))
                .map(|c| c.value(i)),
            subject_region: text_at(&subject_region, i),
            vector: vector.as_ref().filter(|c| c.is_valid(i)).and_then(|c| {
                let values = c.value(i);
                let floats = values.as_any().downcast_ref::<Float32Array>()?;
                Some(floats.values().to_vec())
            }),
            local_features: bytes_at(&local_features, i),
            thumbnail: bytes_at(&thumbnail, i),
            error: text_at(&error, i),
        });
    }
    Ok(rows)
}
