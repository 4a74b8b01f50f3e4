//! Generator tests: determinism, and the rates the module documentation promises.

use std::collections::{HashMap, HashSet};

use super::*;

const N: i64 = 20_000;

fn posts(seed: u64) -> Vec<Post> {
    let g = Generator::new(seed, N as u64);
    (0..N).map(|r| g.post(r)).collect()
}

fn rate(posts: &[Post], f: impl Fn(&Post) -> bool) -> f64 {
    posts.iter().filter(|p| f(p)).count() as f64 / posts.len() as f64
}

fn within(name: &str, value: f64, lo: f64, hi: f64) {
    assert!((lo..=hi).contains(&value), "{name}: rate {value:.4} outside [{lo}, {hi}]");
}

#[test]
fn same_seed_same_rows_any_order() {
    let g = Generator::new(7, 1000);
    let forward: Vec<Post> = (0..1000).map(|r| g.post(r)).collect();
    let backward: Vec<Post> = (0..1000).rev().map(|r| g.post(r)).collect();
    assert!(forward.iter().eq(backward.iter().rev()));
    assert_ne!(Generator::new(8, 1000).post(5), forward[5]);
    assert_eq!(g.pin(42), forward[42].pin);
}

#[test]
fn placeholder_and_suffix_rates_are_in_the_documented_ranges() {
    let p = posts(7);
    let text = |p: &Post, f: fn(&RawPin) -> &Option<String>| f(&p.pin).clone().unwrap_or_default();
    within("no title", rate(&p, |p| text(p, |x| &x.title) == ph::NO_TITLE), 0.02, 0.04);
    within("no description", rate(&p, |p| text(p, |x| &x.description) == ph::NO_DESCRIPTION), 0.02, 0.04);
    within("story placeholder", rate(&p, |p| text(p, |x| &x.description) == ph::NO_DESCRIPTION_STORY), 0.02, 0.045);
    within("untitled", rate(&p, |p| text(p, |x| &x.description) == ph::UNTITLED), 0.008, 0.022);
    within("image src error", rate(&p, |p| text(p, |x| &x.image_src) == ph::IMAGE_SRC_ERROR), 0.02, 0.04);
    within("no tags", rate(&p, |p| text(p, |x| &x.tag_list) == ph::NO_TAGS), 0.02, 0.04);
    within("poster error", rate(&p, |p| text(p, |x| &x.poster_name) == ph::USER_INFO_ERROR), 0.02, 0.04);
    let fc = |p: &Post| text(p, |x| &x.follower_count);
    within("follower error", rate(&p, |p| fc(p) == ph::USER_INFO_ERROR), 0.02, 0.04);
    within("k suffix", rate(&p, |p| fc(p).ends_with('k')), 0.35, 0.55);
    within("M suffix", rate(&p, |p| fc(p).ends_with('M')), 0.12, 0.28);
    within("plain", rate(&p, |p| !fc(p).is_empty() && fc(p).chars().all(|c| c.is_ascii_digit())), 0.22, 0.40);
    within("non-ascii title", rate(&p, |p| !text(p, |x| &x.title).is_ascii()), 0.05, 0.30);
    // The placeholder text appears only in its own column.
    assert!(p.iter().all(|p| text(p, |x| &x.title) != ph::USER_INFO_ERROR));
}

#[test]
fn values_are_realistic() {
    let p = posts(11);
    let categories: HashSet<&str> = CATEGORIES.iter().map(|c| c.0).collect();
    for post in &p {
        let pin = &post.pin;
        let cat = pin.category.as_deref().unwrap();
        assert!(categories.contains(cat));
        assert_eq!(pin.save_location.as_deref().unwrap(), format!("Local save in /data/{cat}"));
        assert!(ph::MEDIA_TYPES.contains(&pin.is_image_or_video.as_deref().unwrap()));
        assert_eq!(pin.unique_id.as_deref().unwrap().len(), 36);
        let age = post.user.age.unwrap();
        assert!((20..=60).contains(&age), "age {age}");
        let joined = post.user.date_joined.unwrap();
        assert!((2015..=2020).contains(&chrono::Datelike::year(&joined)));
        let ts = post.geo.timestamp.unwrap();
        assert!((2017..=2022).contains(&chrono::Datelike::year(&ts)));
        assert!(ts >= joined, "posted before joining");
        assert!(post.geo.latitude.unwrap().abs() <= 90.0 && post.geo.longitude.unwrap().abs() <= 180.0);
    }
    // Every category and both ends of the age range occur.
    let seen: HashSet<&str> = p.iter().map(|p| p.pin.category.as_deref().unwrap()).collect();
    assert_eq!(seen.len(), CATEGORIES.len());
    let ages: HashSet<i64> = p.iter().map(|p| p.user.age.unwrap()).collect();
    assert!(ages.contains(&20) && ages.contains(&60));
}

#[test]
fn users_repeat_and_some_posts_are_exact_duplicates() {
    let p = posts(3);
    let mut per_user: HashMap<(String, String, i64, NaiveDateTime), usize> = HashMap::new();
    for post in &p {
        let u = &post.user;
        *per_user
            .entry((
                u.first_name.clone().unwrap(),
                u.last_name.clone().unwrap(),
                u.age.unwrap(),
                u.date_joined.unwrap(),
            ))
            .or_default() += 1;
    }
    let max = per_user.values().max().copied().unwrap();
    assert!(max >= 50, "most active user has only {max} posts");
    assert!(per_user.len() > 3_000, "only {} distinct users", per_user.len());

    // Exact duplicates: equal content apart from the key.
    let strip = |post: &Post| {
        let mut c = post.clone();
        c.pin.index = 0;
        c.geo.ind = 0;
        c.user.ind = 0;
        serde_json::to_string(&c).unwrap()
    };
    let distinct: HashSet<String> = p.iter().map(strip).collect();
    let dups = p.len() - distinct.len();
    assert!((40..=160).contains(&dups), "{dups} duplicate posts");
}

#[test]
fn follower_counts_format_like_pinterest() {
    assert_eq!(format_followers(305), "305");
    assert_eq!(format_followers(51_234), "51k");
    assert_eq!(format_followers(999_499), "999k");
    assert_eq!(format_followers(999_500), "1M");
    assert_eq!(format_followers(2_600_000), "3M");
}
