//! Host registry tests against a real RocksDB in a temporary directory.

use fleet_proto::v1::KmsgStatus;
use prost::Message;

use crate::storage::fixtures::{cpu_rows, get, identity, item, kill, kills_item, open, put, T0};
use crate::storage::values::{
    decode_host_record, HOST_RECORD_V1_FIXED_LEN, HOST_RECORD_V2_FIXED_LEN, HOST_RECORD_VERSION,
};
use crate::storage::{keys, HostRecord, StorageError, WriteOutcome, CF_HOSTS};

#[test]
fn hosts_get_small_numbers_and_updates_keep_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let a = store.upsert_host(&identity("a"), 1000, true).unwrap();
    let b = store.upsert_host(&identity("b"), 2000, true).unwrap();
    assert_eq!((a.num, b.num), (1, 2));
    assert!(a.connected);
    let mut renamed = identity("a");
    renamed.hostname = "new-name".into();
    let a2 = store.upsert_host(&renamed, 3000, false).unwrap();
    assert_eq!(a2.num, 1);
    assert_eq!(a2.first_seen_ms, 1000);
    assert_eq!(a2.last_seen_ms, 3000);
    assert!(!a2.connected);
    assert_eq!(a2.identity.hostname, "new-name");
    assert_eq!(store.hosts().len(), 2);
    assert_eq!(store.host_by_num(1), Some(a2));
    store.set_connected(2, false, 5000).unwrap();
    assert!(!store.host_by_num(2).unwrap().connected);
    assert!(matches!(
        store.set_connected(99, true, 0),
        Err(StorageError::UnknownHost(99))
    ));
    assert!(matches!(
        store.upsert_host(&identity(""), 0, true),
        Err(StorageError::InvalidArgument(_))
    ));
}
#[test]
fn reopening_keeps_hosts_seqs_and_data() {
    let dir = tempfile::tempdir().unwrap();
    let (h, before) = {
        let store = open(&dir);
        let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
        store.upsert_host(&identity("b"), 0, true).unwrap();
        store
            .write(&[item(h, 9, 41, &[T0, T0 + 10_000])], T0 + 20_000)
            .unwrap();
        (h, cpu_rows(&store, h, 0, i64::MAX))
        // Dropped without flush: the synced WAL must carry everything.
    };
    let store = open(&dir);
    let rec = store.host_by_num(h).unwrap();
    assert_eq!((rec.epoch, rec.last_seq), (9, 41));
    assert!(!rec.connected, "no session survives a restart");
    assert_eq!(store.last_seq(h, 9), 41);
    assert_eq!(cpu_rows(&store, h, 0, i64::MAX), before);
    assert_eq!(before.len(), 4);
    // Numbering continues after the existing hosts.
    assert_eq!(store.upsert_host(&identity("c"), 0, true).unwrap().num, 3);
    store.flush().unwrap();
    drop(store);

    let store = open(&dir);
    assert_eq!(store.hosts().len(), 3);
    assert_eq!(
        store.write(&[item(h, 9, 41, &[T0])], T0).unwrap(),
        vec![WriteOutcome::Duplicate]
    );
}
#[test]
fn version_1_host_records_are_still_read() {
    let rec = HostRecord {
        num: 3,
        identity: identity("old"),
        first_seen_ms: 10,
        last_seen_ms: 20,
        connected: false,
        dropped_samples: 4,
        epoch: 5,
        last_seq: 6,
        kmsg: KmsgStatus::default(),
    };
    // The version 1 layout, as the previous release wrote it.
    let mut v1 = vec![1u8];
    v1.extend_from_slice(&3u32.to_be_bytes());
    v1.extend_from_slice(&10i64.to_be_bytes());
    v1.extend_from_slice(&20i64.to_be_bytes());
    v1.push(0);
    for x in [4u64, 5, 6] {
        v1.extend_from_slice(&x.to_be_bytes());
    }
    v1.extend_from_slice(&rec.identity.encode_to_vec());
    assert_eq!(decode_host_record(&v1).unwrap(), (rec.clone(), None));

    // A store holding it opens, and the record is rewritten as version 2 on the next change.
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    put(&store, CF_HOSTS, keys::host_key("old"), &v1);
    drop(store);
    let store = open(&dir);
    assert_eq!(store.host_by_num(3), Some(rec));
    store
        .write(&[kills_item(3, 5, 7, vec![kill(T0, Some(1), 1)])], T0)
        .unwrap();
    let stored = get(&store, CF_HOSTS, keys::host_key("old")).unwrap();
    assert_eq!(stored[0], HOST_RECORD_VERSION);
    // Damaged version 2 parts are errors.
    let mut v = stored.clone();
    let len_at = HOST_RECORD_V1_FIXED_LEN + 8;
    v[len_at..len_at + 2].copy_from_slice(&u16::MAX.to_be_bytes());
    assert!(decode_host_record(&v).is_err());
    let mut v = stored.clone();
    v[HOST_RECORD_V1_FIXED_LEN..len_at].copy_from_slice(&(-5i64).to_be_bytes());
    assert!(decode_host_record(&v).is_err());
    assert!(decode_host_record(&stored[..HOST_RECORD_V2_FIXED_LEN - 1]).is_err());
}
