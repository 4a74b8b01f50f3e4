//! The value rules of DESIGN.md "Cleaning", one small pure function each.

use pinpipe_model::raw::placeholders as ph;

/// `description` without its placeholders (`No description available`, its story-format
/// variant, `Untitled`).
pub fn description(v: Option<&str>) -> Option<&str> {
    v.filter(|s| !matches!(*s, ph::NO_DESCRIPTION | ph::NO_DESCRIPTION_STORY | ph::UNTITLED))
}

/// `title` without `No Title Data Available`.
pub fn title(v: Option<&str>) -> Option<&str> {
    v.filter(|s| *s != ph::NO_TITLE)
}

/// `image_src` without `Image src error.`.
pub fn image_src(v: Option<&str>) -> Option<&str> {
    v.filter(|s| *s != ph::IMAGE_SRC_ERROR)
}

/// `poster_name` without `User Info Error`.
pub fn poster_name(v: Option<&str>) -> Option<&str> {
    v.filter(|s| *s != ph::USER_INFO_ERROR)
}

/// `tag_list` without the spelled-out `N,o, ,T,a,g,s,...` placeholder.
pub fn tag_list(v: Option<&str>) -> Option<&str> {
    v.filter(|s| *s != ph::NO_TAGS)
}

/// `save_location` without the leading `Local save in `.
pub fn save_location(v: Option<&str>) -> Option<&str> {
    v.map(|s| s.strip_prefix(ph::SAVE_LOCATION_PREFIX).unwrap_or(s))
}

/// `follower_count` text to an integer: `User Info Error` is null; `k` means `000` and `M`
/// means `000000` (textually, as the classic notebook's `regexp_replace`), then the text must
/// be an integer. `Err` carries the reason for the dead letter.
pub fn follower_count(v: Option<&str>) -> Result<Option<i64>, String> {
    let Some(text) = v else { return Ok(None) };
    if text == ph::USER_INFO_ERROR {
        return Ok(None);
    }
    let (digits, zeros) = match text.strip_suffix('k') {
        Some(d) => (d, 3),
        None => match text.strip_suffix('M') {
            Some(d) => (d, 6),
            None => (text, 0),
        },
    };
    let bad = || format!("follower_count {text:?} is not a count (digits, optionally followed by k or M)");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: i64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(10i64.pow(zeros)).map(Some).ok_or_else(bad)
}

/// `user_name` = first_name + " " + last_name; null when either is null.
pub fn user_name(first: Option<&str>, last: Option<&str>) -> Option<String> {
    match (first, last) {
        (Some(f), Some(l)) => {
            let mut s = String::with_capacity(f.len() + 1 + l.len());
            s.push_str(f);
            s.push(' ');
            s.push_str(l);
            Some(s)
        }
        _ => None,
    }
}

/// A raw timestamp (`2020-08-28T03:52:47`, a space accepted for the `T`) as microseconds since
/// the epoch, read as UTC. `Err` carries the reason for the dead letter.
pub fn timestamp_micros(field: &str, v: Option<&str>) -> Result<Option<i64>, String> {
    let Some(text) = v else { return Ok(None) };
    pinpipe_model::time::parse(text)
        .map(|t| Some(t.and_utc().timestamp_micros()))
        .map_err(|_| format!("{field} {text:?} is not a timestamp (YYYY-MM-DDTHH:MM:SS)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follower_counts() {
        assert_eq!(follower_count(Some("305")), Ok(Some(305)));
        assert_eq!(follower_count(Some("51k")), Ok(Some(51_000)));
        assert_eq!(follower_count(Some("1M")), Ok(Some(1_000_000)));
        assert_eq!(follower_count(Some("0")), Ok(Some(0)));
        assert_eq!(follower_count(Some("User Info Error")), Ok(None));
        assert_eq!(follower_count(None), Ok(None));
        for bad in ["", "k", "1.5k", "-3", "12x", "1kM", "99999999999999999999M", " 5"] {
            assert!(follower_count(Some(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn placeholders_only_in_their_own_column() {
        assert_eq!(description(Some("No description available")), None);
        assert_eq!(description(Some("No description available Story format")), None);
        assert_eq!(description(Some("Untitled")), None);
        assert_eq!(description(Some("No Title Data Available")), Some("No Title Data Available"));
        assert_eq!(title(Some("No Title Data Available")), None);
        assert_eq!(title(Some("Untitled")), Some("Untitled"));
        assert_eq!(image_src(Some("Image src error.")), None);
        assert_eq!(poster_name(Some("User Info Error")), None);
        assert_eq!(tag_list(Some("N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e")), None);
        assert_eq!(tag_list(Some("User Info Error")), Some("User Info Error"));
        assert_eq!(save_location(Some("Local save in /data/art")), Some("/data/art"));
        assert_eq!(save_location(Some("/data/art")), Some("/data/art"));
    }

    #[test]
    fn names_and_times() {
        assert_eq!(user_name(Some("Abigail"), Some("Ali")).as_deref(), Some("Abigail Ali"));
        assert_eq!(user_name(None, Some("Ali")), None);
        assert_eq!(timestamp_micros("t", Some("1970-01-01 00:00:01")), Ok(Some(1_000_000)));
        assert_eq!(timestamp_micros("t", Some("2020-08-28T03:52:47")), Ok(Some(1_598_586_767_000_000)));
        assert!(timestamp_micros("t", Some("yesterday")).is_err());
    }
}
