//! JSON-lines files survive torn writes: a failed append leaves the file as it was, a line torn
//! by a crash never swallows the next item, and readers say how many lines they skipped.

use crate::helpers::scratch_file;
use serde::{Deserialize, Serialize};
use twilio_events::jsonl::{Contents, JsonLines, JsonLinesError};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Item {
    n: u32,
}

fn item(n: u32) -> Item {
    Item { n }
}

#[test]
fn a_line_torn_by_a_crash_does_not_swallow_the_next_item() {
    // GIVEN a file whose last append was cut short by a crash (no rollback could run)
    let path = scratch_file("torn.jsonl");
    std::fs::write(&path, "{\"n\":1}\n{\"n\":").unwrap();
    let lines = JsonLines::<Item>::new(&path);
    // WHEN another item is appended
    lines.append(&item(2)).unwrap();
    // THEN it starts on a line of its own, and both good items read back
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "{\"n\":1}\n{\"n\":\n{\"n\":2}\n"
    );
    assert_eq!(
        lines.read().unwrap(),
        Contents {
            values: vec![item(1), item(2)],
            skipped: 1
        }
    );
    assert_eq!(lines.read_all(), [item(1), item(2)]);
}

#[test]
fn a_whole_value_cut_just_before_its_newline_is_kept() {
    let path = scratch_file("no-newline.jsonl");
    std::fs::write(&path, "{\"n\":1}").unwrap();
    let lines = JsonLines::<Item>::new(&path);
    lines.append(&item(2)).unwrap();
    assert_eq!(
        lines.read().unwrap(),
        Contents {
            values: vec![item(1), item(2)],
            skipped: 0
        }
    );
}

#[test]
fn readers_skip_lines_that_do_not_parse_and_count_them() {
    let path = scratch_file("mixed.jsonl");
    std::fs::write(&path, "{\"n\":1}\ngarbage\n\n{\"other\":true}\n{\"n\":2}\n").unwrap();
    let contents = JsonLines::<Item>::new(&path).read().unwrap();
    assert_eq!(contents.values, [item(1), item(2)]);
    assert_eq!(contents.skipped, 2, "blank lines are not counted");
}

#[test]
fn a_file_that_does_not_exist_reads_as_empty() {
    let lines = JsonLines::<Item>::new(scratch_file("absent.jsonl"));
    assert_eq!(lines.read().unwrap(), Contents::default());
}

#[cfg(target_os = "linux")]
#[test]
fn an_append_to_a_full_disk_fails_with_an_error_that_names_the_file() {
    // /dev/full refuses every write with ENOSPC, as a full filesystem does.
    let error = JsonLines::<Item>::new("/dev/full")
        .append(&item(1))
        .unwrap_err();
    assert_eq!(error.path(), std::path::Path::new("/dev/full"));
    assert!(error.to_string().contains("/dev/full"), "{error}");
    assert!(
        matches!(
            error,
            JsonLinesError::Append { .. } | JsonLinesError::AppendNotRolledBack { .. }
        ),
        "{error:?}"
    );
    let cause = std::error::Error::source(&error).expect("the io error is kept");
    assert_eq!(
        cause.downcast_ref::<std::io::Error>().map(|e| e.kind()),
        Some(std::io::ErrorKind::StorageFull)
    );
}

#[test]
fn an_append_in_a_missing_directory_says_which_file_and_what_to_check() {
    let path = scratch_file("x")
        .with_file_name("missing-dir")
        .join("a.jsonl");
    let error = JsonLines::<Item>::new(&path).append(&item(1)).unwrap_err();
    assert!(matches!(error, JsonLinesError::Open { .. }), "{error:?}");
    assert!(error.to_string().contains("a.jsonl"), "{error}");
    assert!(error.to_string().contains("directory exists"), "{error}");
}

#[test]
fn appends_from_many_threads_through_separate_handles_never_interleave() {
    // GIVEN several handles on one file, as serve's components each open their own
    let path = scratch_file("threads.jsonl");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                let lines = JsonLines::<Item>::new(path);
                for i in 0..50 {
                    lines.append(&item(t * 1000 + i)).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    // THEN every line is whole
    let contents = JsonLines::<Item>::new(&path).read().unwrap();
    assert_eq!((contents.values.len(), contents.skipped), (200, 0));
}
