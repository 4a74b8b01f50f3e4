//! The three raw records, field for field as the classic emulator posts them
//! (DESIGN.md "Raw records"). Values the source database holds as NULL are `None` and serialise
//! as JSON `null`; everything else has exactly the shape of the examples in DESIGN.md.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::Kind;

/// The placeholder values of the classic data that mean "no data" (DESIGN.md "Raw records");
/// cleaning turns each into null in its own column.
pub mod placeholders {
    /// `description` placeholder.
    pub const NO_DESCRIPTION: &str = "No description available";
    /// `description` placeholder of story-format pins.
    pub const NO_DESCRIPTION_STORY: &str = "No description available Story format";
    /// `description` placeholder.
    pub const UNTITLED: &str = "Untitled";
    /// `image_src` placeholder.
    pub const IMAGE_SRC_ERROR: &str = "Image src error.";
    /// `poster_name` and `follower_count` placeholder.
    pub const USER_INFO_ERROR: &str = "User Info Error";
    /// `tag_list` placeholder ("No Tags Available" split into characters).
    pub const NO_TAGS: &str = "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e";
    /// `title` placeholder.
    pub const NO_TITLE: &str = "No Title Data Available";
    /// What every `save_location` starts with; cleaning removes it.
    pub const SAVE_LOCATION_PREFIX: &str = "Local save in ";
    /// The `is_image_or_video` values.
    pub const MEDIA_TYPES: [&str; 3] = ["image", "video", "multi-video(story page format)"];
}

/// A row of `pinterest_data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPin {
    /// Row key (`index` in the source and raw record, `ind` once cleaned).
    pub index: i64,
    /// UUID of the pin.
    pub unique_id: Option<String>,
    /// Title, or the placeholder `No Title Data Available`.
    pub title: Option<String>,
    /// Description, or one of the "no description" placeholders.
    pub description: Option<String>,
    /// Who posted it, or `User Info Error`.
    pub poster_name: Option<String>,
    /// `"305"`, `"51k"`, `"1M"` or `User Info Error`.
    pub follower_count: Option<String>,
    /// Comma-separated tags, or the spelled-out `N,o, ,T,a,g,s,...` placeholder.
    pub tag_list: Option<String>,
    /// `image`, `video` or `multi-video(story page format)`.
    pub is_image_or_video: Option<String>,
    /// Image URL, or `Image src error.`.
    pub image_src: Option<String>,
    /// 1 if the image was downloaded, else 0.
    pub downloaded: Option<i64>,
    /// `Local save in /data/<category>`.
    pub save_location: Option<String>,
    /// Category slug, e.g. `mens-fashion`.
    pub category: Option<String>,
}

/// A row of `geolocation_data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGeo {
    /// Row key.
    pub ind: i64,
    /// When the post was made (ISO-8601 without zone).
    #[serde(with = "opt_time")]
    pub timestamp: Option<NaiveDateTime>,
    /// Latitude in degrees.
    pub latitude: Option<f64>,
    /// Longitude in degrees.
    pub longitude: Option<f64>,
    /// Country name.
    pub country: Option<String>,
}

/// A row of `user_data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    /// Row key.
    pub ind: i64,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Age in years.
    pub age: Option<i64>,
    /// When the user joined (ISO-8601 without zone).
    #[serde(with = "opt_time")]
    pub date_joined: Option<NaiveDateTime>,
}

/// Row r of the three tables: one post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Post {
    /// The pin.
    pub pin: RawPin,
    /// Where and when.
    pub geo: RawGeo,
    /// Who.
    pub user: RawUser,
}

impl Post {
    /// The raw record of one kind as a JSON value, as the emulator posts it.
    pub fn json(&self, kind: Kind) -> serde_json::Value {
        // Serialising these plain structs cannot fail (string keys, finite-or-null floats).
        let value = match kind {
            Kind::Pin => serde_json::to_value(&self.pin),
            Kind::Geo => serde_json::to_value(&self.geo),
            Kind::User => serde_json::to_value(&self.user),
        };
        value.unwrap_or(serde_json::Value::Null)
    }
}

mod opt_time {
    use chrono::NaiveDateTime;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub fn serialize<S: Serializer>(t: &Option<NaiveDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&crate::time::to_iso(t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDateTime>, D::Error> {
        match <Option<std::borrow::Cow<'de, str>>>::deserialize(d)? {
            Some(text) => crate::time::parse(&text).map(Some).map_err(D::Error::custom),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_examples_round_trip_exactly() {
        let geo = r#"{"ind":7528,"timestamp":"2020-08-28T03:52:47","latitude":-89.9787,"longitude":-173.293,"country":"Albania"}"#;
        let user =
            r#"{"ind":7528,"first_name":"Abigail","last_name":"Ali","age":20,"date_joined":"2015-10-24T11:23:51"}"#;
        let pin = r#"{"index":7528,"unique_id":"fbe53c66-3442-4773-b19e-d3ec6f54dddf","title":"No Title Data Available","description":"No description available Story format","poster_name":"User Info Error","follower_count":"User Info Error","tag_list":"N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e","is_image_or_video":"multi-video(story page format)","image_src":"Image src error.","downloaded":0,"save_location":"Local save in /data/mens-fashion","category":"mens-fashion"}"#;
        let g: RawGeo = serde_json::from_str(geo).unwrap();
        assert_eq!(g.latitude, Some(-89.9787));
        assert_eq!(serde_json::to_string(&g).unwrap(), geo);
        let u: RawUser = serde_json::from_str(user).unwrap();
        assert_eq!(u.age, Some(20));
        assert_eq!(serde_json::to_string(&u).unwrap(), user);
        let p: RawPin = serde_json::from_str(pin).unwrap();
        assert_eq!(p.follower_count.as_deref(), Some("User Info Error"));
        assert_eq!(serde_json::to_string(&p).unwrap(), pin);
    }

    #[test]
    fn space_separated_timestamps_are_accepted_and_written_with_t() {
        let g: RawGeo = serde_json::from_str(
            r#"{"ind":1,"timestamp":"2019-01-01 07:21:13","latitude":1.5,"longitude":2.0,"country":"Aruba"}"#,
        )
        .unwrap();
        assert_eq!(serde_json::to_value(&g).unwrap()["timestamp"], "2019-01-01T07:21:13");
    }

    #[test]
    fn nulls_stay_null_and_unknown_fields_are_refused() {
        let u: RawUser =
            serde_json::from_str(r#"{"ind":3,"first_name":null,"last_name":"X","age":null,"date_joined":null}"#)
                .unwrap();
        assert_eq!(u.first_name, None);
        assert_eq!(serde_json::to_value(&u).unwrap()["date_joined"], serde_json::Value::Null);
        assert!(
            serde_json::from_str::<RawUser>(
                r#"{"ind":3,"first_name":"a","last_name":"b","age":1,"date_joined":null,"x":1}"#
            )
            .is_err()
        );
    }
}
