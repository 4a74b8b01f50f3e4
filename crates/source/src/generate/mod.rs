//! Deterministic, realistic rows for the three source tables.
//!
//! Row r is a pure function of `(seed, rows, r)`: generating in any order, in chunks, or only the
//! pins for rows loaded from CSV, always gives the same values, and the same seed gives identical
//! tables on every machine (the RNG is PCG64-MCG seeded per row, pinned by `Cargo.lock`).
//!
//! What the generated data looks like (rates are per row; tests check the ranges on 20,000 rows):
//!
//! | column | values |
//! |---|---|
//! | `follower_count` | plain numbers (about 30%), `k` suffix (about 45%), `M` suffix (about 20%), `User Info Error` (3%) |
//! | `poster_name` | people and brand names from a pool of rows/4 posters; `User Info Error` (3%, same rows as above) |
//! | `title` | templates with category words, some with emoji/accents, some non-Latin; `No Title Data Available` (3%) |
//! | `description` | 1–3 sentences; `No description available` (3%), `No description available Story format` (about 40% of story pins, 3% overall), `Untitled` (1.5%) |
//! | `tag_list` | 3–7 comma-separated tags; the `N,o, ,T,a,g,s...` placeholder (3%) |
//! | `is_image_or_video` | `image` 80%, `video` 12%, `multi-video(story page format)` 8% |
//! | `image_src` | pinimg-style URLs; `Image src error.` (3%) |
//! | `category` | the 13 categories of DESIGN.md |
//! | geo | 78 real countries, coordinates near their centroid, timestamps 2017–2022 (never before the user joined) |
//! | user | a pool of rows/2 users, skewed so that some post hundreds of times; ages 20–60; joined 2015–2020 |
//! | duplicates | 0.5% of rows repeat an earlier post exactly (all columns but the key) |

mod words;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use pinpipe_model::raw::placeholders as ph;
use pinpipe_model::{Post, RawGeo, RawPin, RawUser};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

use words::*;

/// Probability that a post repeats an earlier post exactly.
pub const DUPLICATE_RATE: f64 = 0.005;
/// Probability of each single-column placeholder.
pub const PLACEHOLDER_RATE: f64 = 0.03;

/// Generates row r of the three tables.
#[derive(Debug, Clone, Copy)]
pub struct Generator {
    seed: u64,
    users: u64,
    posters: u64,
}

/// Independent random streams derived from the seed.
#[derive(Clone, Copy)]
enum Stream {
    Row = 1,
    User = 2,
    Poster = 3,
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn pick<T: Copy>(rng: &mut Pcg64Mcg, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

fn datetime(secs: i64) -> NaiveDateTime {
    DateTime::from_timestamp(secs, 0).map(|d| d.naive_utc()).unwrap_or_default()
}

fn epoch(y: i32, m: u32, d: u32) -> i64 {
    NaiveDate::from_ymd_opt(y, m, d).and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc().timestamp()).unwrap_or(0)
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Formats a follower count the way Pinterest shows it: `305`, `51k`, `1M`.
pub fn format_followers(n: u64) -> String {
    if n < 1_000 {
        n.to_string()
    } else if n < 999_500 {
        format!("{}k", (n as f64 / 1_000.0).round() as u64)
    } else {
        format!("{}M", ((n as f64 / 1_000_000.0).round() as u64).max(1))
    }
}

/// A user of the pool: who posts, where from.
struct UserProfile {
    first: &'static str,
    last: &'static str,
    age: i64,
    joined: i64,
    country: &'static str,
    latitude: f64,
    longitude: f64,
}

/// A poster of the pool: name, audience, favourite category.
struct Poster {
    name: String,
    followers: u64,
    category: usize,
}

impl Generator {
    /// A generator for a source of `rows` posts (the pools of users and posters scale with it).
    pub fn new(seed: u64, rows: u64) -> Self {
        Generator { seed, users: (rows / 2).max(1), posters: (rows / 4).max(1) }
    }

    fn rng(&self, stream: Stream, id: u64) -> Pcg64Mcg {
        Pcg64Mcg::seed_from_u64(splitmix(
            splitmix(self.seed ^ (stream as u64).wrapping_mul(0xA24B_AED4_963E_E407)) ^ id,
        ))
    }

    /// Picks from a pool of `n` with a skew toward low ids (a few very active members).
    fn skewed(rng: &mut Pcg64Mcg, n: u64, power: f64) -> u64 {
        let u: f64 = rng.random();
        ((n as f64 * u.powf(power)) as u64).min(n - 1)
    }

    fn user(&self, id: u64) -> UserProfile {
        let mut rng = self.rng(Stream::User, id);
        let (country, lat, lon, spread) = pick(&mut rng, COUNTRIES);
        let latitude = round4((lat + spread * (rng.random::<f64>() * 2.0 - 1.0)).clamp(-90.0, 90.0));
        let mut longitude = lon + spread * (rng.random::<f64>() * 2.0 - 1.0);
        if longitude > 180.0 {
            longitude -= 360.0;
        } else if longitude < -180.0 {
            longitude += 360.0;
        }
        UserProfile {
            first: pick(&mut rng, FIRST_NAMES),
            last: pick(&mut rng, LAST_NAMES),
            age: 20 + (40.0 * rng.random::<f64>().powf(1.8)).round() as i64,
            joined: rng.random_range(epoch(2015, 1, 1)..epoch(2021, 1, 1)),
            country,
            latitude,
            longitude: round4(longitude),
        }
    }

    fn poster(&self, id: u64) -> Poster {
        let mut rng = self.rng(Stream::Poster, id);
        let name = if rng.random_bool(0.55) {
            format!("{} {}", pick(&mut rng, FIRST_NAMES), pick(&mut rng, LAST_NAMES))
        } else {
            let the = if rng.random_bool(0.2) { "The " } else { "" };
            format!("{the}{} {}", pick(&mut rng, BRAND_WORDS_A), pick(&mut rng, BRAND_WORDS_B))
        };
        let followers = 10f64.powf(rng.random_range(1.0..7.3)) as u64;
        Poster { name, followers, category: rng.random_range(0..CATEGORIES.len()) }
    }

    /// Row r of the three tables.
    pub fn post(&self, r: i64) -> Post {
        // A duplicate repeats an earlier row's content; follow the chain to an original.
        let mut src = r;
        loop {
            let mut rng = self.rng(Stream::Row, src as u64);
            if src > 0 && rng.random_bool(DUPLICATE_RATE) {
                src -= 1 + rng.random_range(0..src.min(100));
            } else {
                break;
            }
        }
        let mut post = self.original(src);
        post.pin.index = r;
        post.geo.ind = r;
        post.user.ind = r;
        post
    }

    /// Only the pin of row r (used to fill a missing pin file when loading CSVs).
    pub fn pin(&self, r: i64) -> RawPin {
        self.post(r).pin
    }

    fn original(&self, r: i64) -> Post {
        let mut rng = self.rng(Stream::Row, r as u64);
        let _duplicate_draw: bool = rng.random_bool(DUPLICATE_RATE);
        let user = self.user(Self::skewed(&mut rng, self.users, 2.0));
        let poster = self.poster(Self::skewed(&mut rng, self.posters, 1.5));

        let (category, words) =
            if rng.random_bool(0.7) { CATEGORIES[poster.category] } else { pick(&mut rng, CATEGORIES) };
        let media = media_type(&mut rng);
        let title = title(&mut rng, words);
        let description = description(&mut rng, words, media == ph::MEDIA_TYPES[2]);
        let poster_error = rng.random_bool(PLACEHOLDER_RATE);
        let (poster_name, follower_count) = if poster_error {
            (ph::USER_INFO_ERROR.to_owned(), ph::USER_INFO_ERROR.to_owned())
        } else {
            (poster.name, format_followers(poster.followers))
        };
        let tag_list = tag_list(&mut rng, words);
        let (image_src, downloaded) = image(&mut rng, media);

        let u = rng.random::<u128>();
        let unique_id = uuid_v4(u);

        let start = user.joined.max(epoch(2017, 1, 1));
        let timestamp = datetime(rng.random_range(start..epoch(2023, 1, 1)));

        Post {
            pin: RawPin {
                index: r,
                unique_id: Some(unique_id),
                title: Some(title),
                description: Some(description),
                poster_name: Some(poster_name),
                follower_count: Some(follower_count),
                tag_list: Some(tag_list),
                is_image_or_video: Some(media.to_owned()),
                image_src: Some(image_src),
                downloaded: Some(downloaded),
                save_location: Some(format!("{}/data/{category}", ph::SAVE_LOCATION_PREFIX)),
                category: Some(category.to_owned()),
            },
            geo: RawGeo {
                ind: r,
                timestamp: Some(timestamp),
                latitude: Some(user.latitude),
                longitude: Some(user.longitude),
                country: Some(user.country.to_owned()),
            },
            user: RawUser {
                ind: r,
                first_name: Some(user.first.to_owned()),
                last_name: Some(user.last.to_owned()),
                age: Some(user.age),
                date_joined: Some(datetime(user.joined)),
            },
        }
    }
}

// The fields of a generated pin, each drawn from the row's generator in this order (the order
// is part of what a seed means: same seed, same rows).

/// `image` (80%), `video` (12%) or a story (8%).
fn media_type(rng: &mut Pcg64Mcg) -> &'static str {
    let x: f64 = rng.random();
    if x < 0.80 {
        ph::MEDIA_TYPES[0]
    } else if x < 0.92 {
        ph::MEDIA_TYPES[1]
    } else {
        ph::MEDIA_TYPES[2]
    }
}

/// A title from a template and the category's words; sometimes the placeholder, a foreign
/// title or one with Unicode decoration.
fn title(rng: &mut Pcg64Mcg, words: &[&str]) -> String {
    if rng.random_bool(PLACEHOLDER_RATE) {
        ph::NO_TITLE.to_owned()
    } else if rng.random_bool(0.05) {
        pick(rng, FOREIGN_TITLES).to_owned()
    } else {
        let t = pick(rng, TITLE_TEMPLATES)
            .replace("{w}", pick(rng, words))
            .replace("{n}", &rng.random_range(3..26).to_string());
        let mut t = capitalise(&t);
        if rng.random_bool(0.15) {
            t = format!("{t} {}", pick(rng, UNICODE_DECOR));
        }
        t
    }
}

/// One to three distinct sentences, or a placeholder (stories have their own).
fn description(rng: &mut Pcg64Mcg, words: &[&str], is_story: bool) -> String {
    let x: f64 = rng.random();
    if is_story && rng.random_bool(0.4) {
        ph::NO_DESCRIPTION_STORY.to_owned()
    } else if x < PLACEHOLDER_RATE {
        ph::NO_DESCRIPTION.to_owned()
    } else if x < PLACEHOLDER_RATE + 0.015 {
        ph::UNTITLED.to_owned()
    } else {
        let n = rng.random_range(1..4);
        let mut sentences: Vec<&str> = Vec::with_capacity(n);
        while sentences.len() < n {
            let s = pick(rng, DESCRIPTION_SENTENCES);
            if !sentences.contains(&s) {
                sentences.push(s);
            }
        }
        sentences.iter().map(|s| s.replace("{w}", pick(rng, words))).collect::<Vec<_>>().join(" ")
    }
}

/// Three to seven distinct tags, mostly the category's words, or the placeholder.
fn tag_list(rng: &mut Pcg64Mcg, words: &[&str]) -> String {
    if rng.random_bool(PLACEHOLDER_RATE) {
        return ph::NO_TAGS.to_owned();
    }
    let n = rng.random_range(3..8);
    let mut tags: Vec<&str> = Vec::with_capacity(n);
    while tags.len() < n {
        let t = if rng.random_bool(0.7) { pick(rng, words) } else { pick(rng, GENERAL_TAGS) };
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    tags.join(",")
}

/// The image URL (or the placeholder) and whether it was downloaded.
fn image(rng: &mut Pcg64Mcg, media: &str) -> (String, i64) {
    let hash = format!("{:032x}", rng.random::<u128>());
    let image_error = rng.random_bool(PLACEHOLDER_RATE);
    let image_src = if image_error {
        ph::IMAGE_SRC_ERROR.to_owned()
    } else if media == "image" {
        format!("https://i.pinimg.com/originals/{}/{}/{}/{hash}.jpg", &hash[0..2], &hash[2..4], &hash[4..6])
    } else {
        format!(
            "https://i.pinimg.com/videos/thumbnails/originals/{}/{}/{}/{hash}.0000001.jpg",
            &hash[0..2],
            &hash[2..4],
            &hash[4..6]
        )
    };
    let downloaded = if image_error || rng.random_bool(0.05) { 0 } else { 1 };
    (image_src, downloaded)
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn uuid_v4(bits: u128) -> String {
    let b = (bits & !(0xF << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let h = format!("{b:032x}");
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

#[cfg(test)]
mod tests;
