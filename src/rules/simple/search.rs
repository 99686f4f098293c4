//! The search itself: greedy, leftmost-first backtracking over the pattern's pieces, with a
//! step budget (plain patterns) or with memory (patterns with lookaround; see the module doc of
//! `simple` for the bound).

use super::*;

pub(super) const UNKNOWN: usize = usize::MAX;

/// What a lookaround search has learnt so far (see the module doc for the bound it gives).
pub(super) struct Memo {
    /// Positions per slot: `n + 1`.
    width: usize,
    /// Bit `slot * width + pos`: matching on from there fails.
    failed: Vec<u64>,
    /// `look * width + pos`: 0 untested, 1 holds, 2 fails.
    looks: Vec<u8>,
    /// Per slot of a repeated item, lazily: where the run of matching characters starting at
    /// each position ends, and, per run end, the lowest end already tried (all above failed).
    runs: Vec<Option<(Vec<usize>, Vec<usize>)>>,
}

impl Memo {
    pub(super) fn new(simple: &Simple, n: usize) -> Memo {
        let width = n + 1;
        Memo {
            width,
            failed: vec![0; (simple.slot_count * width).div_ceil(64)],
            looks: vec![0; simple.looks.len() * width],
            runs: vec![None; simple.slot_count],
        }
    }

    fn has_failed(&self, slot: usize, pos: usize) -> bool {
        let bit = slot * self.width + pos;
        self.failed
            .get(bit / 64)
            .is_some_and(|w| w & (1 << (bit % 64)) != 0)
    }

    fn fail(&mut self, slot: usize, pos: usize) {
        let bit = slot * self.width + pos;
        if let Some(w) = self.failed.get_mut(bit / 64) {
            *w |= 1 << (bit % 64);
        }
    }
}

/// Where a search is inside a `Seq` piece: its items, the piece, its group and where it began.
#[derive(Clone, Copy)]
pub(super) struct Frame<'p> {
    items: &'p [Item],
    piece: usize,
    group: usize,
    start: usize,
}

/// `MEMO`: a lookaround search, memoised and unbudgeted; plain searches compile without it.
pub(super) struct Search<'a, const MEMO: bool> {
    pub(super) subject: &'a str,
    pub(super) simple: &'a Simple,
    pub(super) pieces: &'a [Piece],
    pub(super) budget: usize,
    pub(super) spans: &'a mut Vec<(usize, usize)>,
    pub(super) memo: Option<Memo>,
}

impl<const MEMO: bool> Search<'_, MEMO> {
    fn step(&mut self) -> Result<(), Exhausted> {
        self.budget = self.budget.checked_sub(1).ok_or(Exhausted)?;
        Ok(())
    }

    /// Runs `explore` for the state `slot` at `pos` unless it is known to fail, and remembers a
    /// failure.
    fn memoised(
        &mut self,
        slot: usize,
        pos: usize,
        explore: impl FnOnce(&mut Self) -> Result<bool, Exhausted>,
    ) -> Result<bool, Exhausted> {
        if self.memo.as_ref().is_some_and(|m| m.has_failed(slot, pos)) {
            return Ok(false);
        }
        let found = explore(self)?;
        if !found {
            if let Some(m) = self.memo.as_mut() {
                m.fail(slot, pos);
            }
        }
        Ok(found)
    }

    /// Matches pieces from `piece` at byte `pos`; `group` is the index of the next group.
    pub(super) fn pieces_from(
        &mut self,
        piece: usize,
        pos: usize,
        group: usize,
    ) -> Result<bool, Exhausted> {
        self.step()?;
        if !MEMO {
            return self.piece_at(piece, pos, group);
        }
        let slot = self.simple.slot(piece, None);
        self.memoised(slot, pos, |s| s.piece_at(piece, pos, group))
    }

    #[inline(always)]
    fn piece_at(&mut self, piece: usize, pos: usize, group: usize) -> Result<bool, Exhausted> {
        let Some(p) = self.pieces.get(piece) else {
            return Ok(pos == self.subject.len());
        };
        let rest = self.subject.get(pos..).unwrap_or_default();
        match p {
            Piece::Literal(text) => {
                if rest.starts_with(text.as_str()) {
                    self.pieces_from(piece + 1, pos + text.len(), group)
                } else {
                    Ok(false)
                }
            }
            Piece::Alt(alts) => {
                for alt in alts {
                    if rest.starts_with(alt.as_str())
                        && self.pieces_from(piece + 1, pos + alt.len(), group + 1)?
                    {
                        self.set(group, pos, pos + alt.len());
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Piece::Seq(items) => {
                let frame = Frame {
                    items,
                    piece,
                    group,
                    start: pos,
                };
                self.items_from(&frame, 0, pos)
            }
        }
    }

    fn items_from(&mut self, f: &Frame<'_>, item: usize, pos: usize) -> Result<bool, Exhausted> {
        self.step()?;
        if !MEMO {
            return self.item_at(f, item, pos);
        }
        let slot = self.simple.slot(f.piece, Some(item));
        self.memoised(slot, pos, |s| s.item_at(f, item, pos))
    }

    #[inline(always)]
    fn item_at(&mut self, f: &Frame<'_>, item: usize, pos: usize) -> Result<bool, Exhausted> {
        let Some(it) = f.items.get(item) else {
            if self.pieces_from(f.piece + 1, pos, f.group + 1)? {
                self.set(f.group, f.start, pos);
                return Ok(true);
            }
            return Ok(false);
        };
        if let (true, Atom::Look(k)) = (MEMO, &it.atom) {
            let k = *k;
            if !self.holds(k, pos) {
                return Ok(false);
            }
            return self.items_from(f, item + 1, pos);
        }
        if MEMO && it.repeat {
            return self.repeat_memoised(f, item, pos);
        }
        let rest = self.subject.get(pos..).unwrap_or_default();
        // Greedy: take as many as allowed, then give back one character at a time.
        let mut end = pos;
        for c in rest.chars() {
            if !it.atom.test(c) {
                break;
            }
            end += c.len_utf8();
            if !it.repeat {
                break;
            }
        }
        if end == pos && !it.optional {
            return Ok(false);
        }
        loop {
            if self.items_from(f, item + 1, end)? {
                return Ok(true);
            }
            if end == pos {
                return Ok(false);
            }
            let back = self
                .subject
                .get(pos..end)
                .and_then(|taken| taken.chars().next_back())
                .map_or(1, char::len_utf8);
            end -= back;
            if end == pos && !it.optional {
                return Ok(false);
            }
        }
    }

    /// Whether lookaround `k` holds at `pos`, tested once per position.
    fn holds(&mut self, k: usize, pos: usize) -> bool {
        let (subject, looks) = (self.subject, &self.simple.looks);
        let Some(m) = self.memo.as_mut() else {
            return false;
        };
        let Some(known) = m.looks.get_mut(k * m.width + pos) else {
            return false;
        };
        if *known == 0 {
            let holds = looks.get(k).is_some_and(|l| l.holds(subject, pos));
            *known = if holds { 1 } else { 2 };
        }
        *known == 1
    }

    /// The greedy loop of a repeated item, under a memo: ends are tried from the end of the
    /// run of matching characters down, skipping those an earlier state of this item already
    /// tried (they failed, or the search would be over), so each end is tried once per item.
    fn repeat_memoised(
        &mut self,
        f: &Frame<'_>,
        item: usize,
        pos: usize,
    ) -> Result<bool, Exhausted> {
        let slot = self.simple.slot(f.piece, Some(item));
        let Some(it) = f.items.get(item) else {
            return Ok(false);
        };
        let run = self.run_end(slot, &it.atom, pos);
        let first = self
            .subject
            .get(pos..run)
            .and_then(|taken| taken.chars().next())
            .map_or(0, char::len_utf8);
        if first == 0 && !it.optional {
            return Ok(false);
        }
        let lowest = if it.optional { pos } else { pos + first };
        let tried = self.low(slot, run);
        let mut end = if tried == UNKNOWN { run } else { tried };
        if tried != UNKNOWN {
            if end <= lowest {
                return Ok(false);
            }
            end = self.back(pos, end);
        }
        loop {
            if self.items_from(f, item + 1, end)? {
                return Ok(true);
            }
            self.set_low(slot, run, end);
            if end <= lowest {
                return Ok(false);
            }
            end = self.back(pos, end);
        }
    }

    /// The position one character before `end` (not before `pos`).
    fn back(&self, pos: usize, end: usize) -> usize {
        let len = self
            .subject
            .get(pos..end)
            .and_then(|taken| taken.chars().next_back())
            .map_or(1, char::len_utf8);
        end.saturating_sub(len).max(pos)
    }

    fn runs(&mut self, slot: usize) -> Option<&mut (Vec<usize>, Vec<usize>)> {
        let width = self.subject.len() + 1;
        let entry = self.memo.as_mut()?.runs.get_mut(slot)?;
        Some(entry.get_or_insert_with(|| (vec![UNKNOWN; width], vec![UNKNOWN; width])))
    }

    /// Where the run of characters passing `atom` from `pos` ends; each position is scanned
    /// once per item.
    fn run_end(&mut self, slot: usize, atom: &Atom, pos: usize) -> usize {
        let subject = self.subject;
        let Some((ends, _)) = self.runs(slot) else {
            return pos;
        };
        let mut seen = Vec::new();
        let mut at = pos;
        let end = loop {
            match ends.get(at) {
                Some(&known) if known != UNKNOWN => break known,
                _ => {}
            }
            match subject.get(at..).and_then(|rest| rest.chars().next()) {
                Some(c) if atom.test(c) => {
                    seen.push(at);
                    at += c.len_utf8();
                }
                _ => break at,
            }
        };
        for p in seen.into_iter().chain(std::iter::once(at)) {
            if let Some(e) = ends.get_mut(p) {
                if *e == UNKNOWN {
                    *e = end;
                }
            }
        }
        end
    }

    fn low(&mut self, slot: usize, run: usize) -> usize {
        self.runs(slot)
            .and_then(|(_, low)| low.get(run).copied())
            .unwrap_or(UNKNOWN)
    }

    fn set_low(&mut self, slot: usize, run: usize, end: usize) {
        if let Some(l) = self.runs(slot).and_then(|(_, low)| low.get_mut(run)) {
            *l = end;
        }
    }

    fn set(&mut self, group: usize, start: usize, end: usize) {
        if let Some(span) = self.spans.get_mut(group) {
            *span = (start, end);
        }
    }
}
