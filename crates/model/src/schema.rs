//! Arrow schemas of the raw records (explicit, never inferred) and of the cleaned tables
//! (DESIGN.md "Cleaning"). Timestamps are microseconds in UTC, Delta's `timestamp` type, which
//! every Delta reader (Spark, delta-rs, DuckDB) understands.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::Kind;

/// Time zone written on cleaned timestamp columns: the raw text has no zone and is read as UTC.
pub const TIMESTAMP_TZ: &str = "UTC";

/// The Arrow type of cleaned timestamps.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(TIMESTAMP_TZ.into()))
}

/// The element field of the geo `coordinates` list (`[latitude, longitude]`).
pub fn coordinates_item() -> Arc<Field> {
    Arc::new(Field::new("element", DataType::Float64, true))
}

fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn int64(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Int64, nullable)
}

/// Schema of a raw record of `kind` (as posted; timestamps still text).
pub fn raw(kind: Kind) -> SchemaRef {
    let fields = match kind {
        Kind::Pin => vec![
            int64("index", false),
            utf8("unique_id"),
            utf8("title"),
            utf8("description"),
            utf8("poster_name"),
            utf8("follower_count"),
            utf8("tag_list"),
            utf8("is_image_or_video"),
            utf8("image_src"),
            int64("downloaded", true),
            utf8("save_location"),
            utf8("category"),
        ],
        Kind::Geo => vec![
            int64("ind", false),
            utf8("timestamp"),
            Field::new("latitude", DataType::Float64, true),
            Field::new("longitude", DataType::Float64, true),
            utf8("country"),
        ],
        Kind::User => {
            vec![int64("ind", false), utf8("first_name"), utf8("last_name"), int64("age", true), utf8("date_joined")]
        }
    };
    Arc::new(Schema::new(fields))
}

/// Schema of the cleaned table of `kind`, columns in the order DESIGN.md gives.
pub fn clean(kind: Kind) -> SchemaRef {
    let fields = match kind {
        Kind::Pin => vec![
            int64("ind", false),
            utf8("unique_id"),
            utf8("title"),
            utf8("description"),
            int64("follower_count", true),
            utf8("poster_name"),
            utf8("tag_list"),
            utf8("is_image_or_video"),
            utf8("image_src"),
            utf8("save_location"),
            utf8("category"),
        ],
        Kind::Geo => vec![
            int64("ind", false),
            utf8("country"),
            Field::new("coordinates", DataType::List(coordinates_item()), true),
            Field::new("timestamp", timestamp_type(), true),
        ],
        Kind::User => vec![
            int64("ind", false),
            utf8("user_name"),
            int64("age", true),
            Field::new("date_joined", timestamp_type(), true),
        ],
    };
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &Schema) -> Vec<&str> {
        s.fields().iter().map(|f| f.name().as_str()).collect()
    }

    #[test]
    fn clean_columns_are_in_design_order() {
        assert_eq!(
            names(&clean(Kind::Pin)),
            [
                "ind",
                "unique_id",
                "title",
                "description",
                "follower_count",
                "poster_name",
                "tag_list",
                "is_image_or_video",
                "image_src",
                "save_location",
                "category"
            ]
        );
        assert_eq!(names(&clean(Kind::Geo)), ["ind", "country", "coordinates", "timestamp"]);
        assert_eq!(names(&clean(Kind::User)), ["ind", "user_name", "age", "date_joined"]);
    }

    #[test]
    fn raw_schemas_match_raw_record_fields() {
        use crate::raw::*;
        let post = Post {
            pin: RawPin {
                index: 1,
                unique_id: None,
                title: None,
                description: None,
                poster_name: None,
                follower_count: None,
                tag_list: None,
                is_image_or_video: None,
                image_src: None,
                downloaded: None,
                save_location: None,
                category: None,
            },
            geo: RawGeo { ind: 1, timestamp: None, latitude: None, longitude: None, country: None },
            user: RawUser { ind: 1, first_name: None, last_name: None, age: None, date_joined: None },
        };
        for kind in Kind::ALL {
            let json = post.json(kind);
            let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
            let schema = raw(kind);
            assert_eq!(keys, names(&schema), "{kind}: raw JSON keys and raw schema columns, in order");
        }
    }
}
