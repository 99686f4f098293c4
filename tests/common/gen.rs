//! The seeded generator of the property tests (`tests/properties.rs`, `tests/lookaround.rs`).

/// xorshift64*: deterministic, so a failure reproduces from its seed.
#[allow(dead_code)]
pub struct Gen(pub u64);

impl Gen {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    #[allow(dead_code)]
    pub fn string(&mut self, alphabet: &[&str], max: u64) -> String {
        let len = self.next() % max;
        (0..len).map(|_| self.pick(alphabet)).collect()
    }
}
