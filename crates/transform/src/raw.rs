//! Borrowing views of the raw records for parsing: strings are borrowed from the input where
//! they have no escapes. Unknown fields are ignored (a producer may add fields); a missing key
//! field or a value of the wrong type is a parse error, which becomes a dead letter.

use std::borrow::Cow;

use serde::Deserialize;

#[derive(Deserialize)]
pub(crate) struct Pin<'a> {
    pub index: i64,
    #[serde(borrow, default)]
    pub unique_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub title: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub description: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub poster_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub follower_count: Option<Count<'a>>,
    #[serde(borrow, default)]
    pub tag_list: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub is_image_or_video: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub image_src: Option<Cow<'a, str>>,
    /// Typed (a wrong type is a dead letter) but not a clean column.
    #[serde(default)]
    pub downloaded: Option<i64>,
    #[serde(borrow, default)]
    pub save_location: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub category: Option<Cow<'a, str>>,
}

/// follower_count as posted: text (`"51k"`), or a plain JSON integer from other producers.
pub(crate) enum Count<'a> {
    Int(i64),
    Text(Cow<'a, str>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Count<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Count<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a follower count (text such as \"51k\", or an integer)")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Count::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v).map(Count::Int).map_err(|_| E::custom("follower_count out of range"))
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Count::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Count::Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
pub(crate) struct Geo<'a> {
    pub ind: i64,
    #[serde(borrow, default)]
    pub timestamp: Option<Cow<'a, str>>,
    #[serde(default)]
    pub latitude: Option<f64>,
    #[serde(default)]
    pub longitude: Option<f64>,
    #[serde(borrow, default)]
    pub country: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
pub(crate) struct User<'a> {
    pub ind: i64,
    #[serde(borrow, default)]
    pub first_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub last_name: Option<Cow<'a, str>>,
    #[serde(default)]
    pub age: Option<i64>,
    #[serde(borrow, default)]
    pub date_joined: Option<Cow<'a, str>>,
}
