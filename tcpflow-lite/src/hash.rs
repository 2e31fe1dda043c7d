//! The hasher of every table keyed by what a sender chooses (connections by address and
//! port, their history, the output's directions): seeded per process, so that nobody who
//! sends the packets can choose keys that all land in one bucket.
//!
//! A fixed function, however fast, lets a sender compute colliding addresses offline: with
//! the multiply-rotate hasher used before, 40,000 crafted IPv6 SYNs took 41 s against 0.1 s
//! for random ones, each insertion probing past every earlier one. foldhash's `RandomState`
//! mixes a per-process random seed into every hash and costs about the same per look-up.

use std::collections::HashMap;

/// The seeded hasher: foldhash's random state (a per-process seed, mixed per table).
pub(crate) type FlowHasher = foldhash::fast::RandomState;

/// A `HashMap` with [`FlowHasher`].
pub(crate) type FlowMap<K, V> = HashMap<K, V, FlowHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
    use std::net::{IpAddr, Ipv6Addr};

    use crate::flow::FlowKey;

    /// The fixed hasher tcpflow-lite used before (FxHash's multiply-rotate): the reference
    /// against which the keys below are crafted.
    #[derive(Default)]
    struct FixedHasher(u64);

    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    impl Hasher for FixedHasher {
        fn write(&mut self, bytes: &[u8]) {
            for chunk in bytes.chunks(8) {
                let mut word = [0u8; 8];
                word[..chunk.len()].copy_from_slice(chunk);
                self.write_u64(u64::from_le_bytes(word));
            }
        }
        fn write_u64(&mut self, word: u64) {
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
        fn write_u8(&mut self, i: u8) {
            self.write_u64(i.into());
        }
        fn write_u16(&mut self, i: u16) {
            self.write_u64(i.into());
        }
        fn write_u32(&mut self, i: u32) {
            self.write_u64(i.into());
        }
        fn write_usize(&mut self, i: usize) {
            self.write_u64(i as u64);
        }
        fn finish(&self) -> u64 {
            self.0
        }
    }

    /// The words a key feeds the fixed hasher, in order.
    #[derive(Default)]
    struct Words(Vec<u64>);

    impl Hasher for Words {
        fn write(&mut self, bytes: &[u8]) {
            for chunk in bytes.chunks(8) {
                let mut word = [0u8; 8];
                word[..chunk.len()].copy_from_slice(chunk);
                self.0.push(u64::from_le_bytes(word));
            }
        }
        fn write_u64(&mut self, word: u64) {
            self.0.push(word);
        }
        fn write_u8(&mut self, i: u8) {
            self.write_u64(i.into());
        }
        fn write_u16(&mut self, i: u16) {
            self.write_u64(i.into());
        }
        fn write_u32(&mut self, i: u32) {
            self.write_u64(i.into());
        }
        fn write_usize(&mut self, i: usize) {
            self.write_u64(i as u64);
        }
        fn finish(&self) -> u64 {
            0
        }
    }

    fn key(src: Ipv6Addr) -> FlowKey {
        FlowKey {
            src: IpAddr::V6(src),
            src_port: 40_000,
            dst: IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
            dst_port: 80,
            vlan: None,
        }
    }

    /// `n` connection keys, from as many source addresses, that all hash alike under the
    /// fixed hasher: the first half of each address is free, the second is solved so that
    /// the hasher's state after the address is the same (multiplying by an odd constant is
    /// invertible).
    fn colliding_keys(n: u64) -> Vec<FlowKey> {
        let probe = Ipv6Addr::from(0x0102_0304_0506_0708_1112_1314_1516_1718u128);
        let mut words = Words::default();
        key(probe).hash(&mut words);
        let octets = probe.octets();
        let halves = [0..8, 8..16].map(|r| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&octets[r]);
            u64::from_le_bytes(w)
        });
        let at = words
            .0
            .windows(2)
            .position(|w| w == halves)
            .expect("the address is hashed as two words");
        let mut before = FixedHasher::default();
        words.0[..at].iter().for_each(|w| before.write_u64(*w));
        let mut k_inverse = K; // Newton's iteration: K * K^-1 = 1 mod 2^64
        for _ in 0..6 {
            k_inverse = k_inverse.wrapping_mul(2u64.wrapping_sub(K.wrapping_mul(k_inverse)));
        }
        let target = 0x1234_5678_9abc_def0u64;
        (1..=n)
            .map(|i| {
                let first = i << 16;
                let state = (before.0.rotate_left(5) ^ first).wrapping_mul(K);
                let second = target.wrapping_mul(k_inverse) ^ state.rotate_left(5);
                let mut octets = [0u8; 16];
                octets[..8].copy_from_slice(&first.to_le_bytes());
                octets[8..].copy_from_slice(&second.to_le_bytes());
                key(Ipv6Addr::from(octets))
            })
            .collect()
    }

    thread_local! {
        static COMPARISONS: Cell<u64> = const { Cell::new(0) };
    }

    /// A key that counts how often the table compares it: a look-up compares once per
    /// candidate it probes, so this is the table's work.
    #[derive(Clone, Copy)]
    struct Counted(FlowKey);

    impl PartialEq for Counted {
        fn eq(&self, other: &Counted) -> bool {
            COMPARISONS.with(|c| c.set(c.get() + 1));
            self.0 == other.0
        }
    }
    impl Eq for Counted {}
    impl Hash for Counted {
        fn hash<H: Hasher>(&self, state: &mut H) {
            self.0.hash(state);
        }
    }

    /// Inserts every key, then looks each up: the comparisons made.
    fn comparisons<S: BuildHasher + Default>(keys: &[FlowKey]) -> u64 {
        COMPARISONS.with(|c| c.set(0));
        let mut map: HashMap<Counted, usize, S> = HashMap::default();
        for (i, k) in keys.iter().enumerate() {
            map.insert(Counted(*k), i);
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(map.get(&Counted(*k)), Some(&i));
        }
        COMPARISONS.with(Cell::get)
    }

    #[test]
    fn keys_crafted_to_collide_cost_linear_work() {
        let n = 4_000;
        let keys = colliding_keys(n);
        // They do collide under a fixed hasher, all of them, and the table degrades to a
        // list: every insertion compares with every earlier key.
        let fixed = BuildHasherDefault::<FixedHasher>::default();
        let first = fixed.hash_one(keys[0]);
        assert!(keys.iter().all(|k| fixed.hash_one(k) == first));
        let quadratic = comparisons::<BuildHasherDefault<FixedHasher>>(&keys);
        assert!(quadratic > n * n / 4, "{quadratic} comparisons");
        // The table the flows use stays at about one comparison per operation.
        let linear = comparisons::<FlowHasher>(&keys);
        assert!(linear <= 4 * n, "{linear} comparisons for {n} keys");
    }
}
