//! S3 post-processing: the domain labels and persona cleaning.

/// The 10 domain labels of the reference code (`config.py`), exact strings.
pub const DOMAINS: [&str; 10] = [
    "Math",
    "Technology & Engineering",
    "Coding",
    "Social Science",
    "Natural Science",
    "Travel & Lifestyle",
    "Commerce & Economics",
    "Medicine & Health",
    "Education",
    "Other",
];

/// The label `raw` names, compared case-insensitively after trimming (\[D\]; the reference
/// code needs an exact match).
pub fn canonical_domain(raw: &str) -> Option<&'static str> {
    let t = raw.trim();
    DOMAINS.iter().copied().find(|d| d.eq_ignore_ascii_case(t))
}

/// Personas from the tagger's comma-separated string: split on commas, trimmed, empties
/// dropped, case-insensitive duplicates dropped, the first `max` kept in order (\[D\]).
pub fn clean_personas(raw: &str, max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in raw.split(',') {
        let p = p.trim();
        if p.is_empty() || out.iter().any(|q| q.to_lowercase() == p.to_lowercase()) {
            continue;
        }
        if out.len() == max {
            break;
        }
        out.push(p.to_string());
    }
    out
}
