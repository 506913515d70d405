//! /dev/kmsg text as the device returns it: one record per read, its continuation lines (those
//! starting with a space: the record's dictionary) included. Used by the tests that feed a
//! `.kmsg` fixture record by record, without the rest of `support`.

/// The records of `text`, each without its final newline.
pub fn records(text: &str) -> Vec<String> {
    let mut records: Vec<String> = Vec::new();
    for line in text.split('\n') {
        if line.starts_with(' ') {
            if let Some(last) = records.last_mut() {
                last.push('\n');
                last.push_str(line);
                continue;
            }
        }
        if !line.is_empty() {
            records.push(line.to_string());
        }
    }
    records
}
