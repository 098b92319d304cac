/*
 * The commit of a sharded topic's version (core/topic_state.cpp, commit_rank_version) as a Promela model, checked
 * with spin (see check.sh).
 *
 * Two ranks publish versions in lockstep: each begins version v once latest is v - 1, rank 0 writes the version's
 * record (0, then kRecordPending | v: its body between), each stores its published word, then calls the commit.
 * The broker calls the commit at any time it may find work (a rank's notice, its death, an adoption). A commit
 * reads latest, checks both published words, claims the record (kRecordPending | v -> v), then moves latest
 * from v - 1 to v; any step is one load or one compare-and-swap. A rank may die once after its published store
 * (it skips the commit, and is taken over), or after its claim (it never moves latest). The ring holds RING
 * records, so that a committer that read latest long ago meets a later version's record in its slot.
 *
 * Checked: each version commits exactly once, latest only moves up by one, a committed version's record holds
 * it, and nothing deadlocks: every version gets committed (no invalid end state).
 */
#ifndef MAXV
#define MAXV 4
#endif
#ifndef RING
#define RING 2
#endif
#define PENDING 128

byte latest;
byte published[2];
byte rec[RING];
byte commits[MAXV + 1];
byte deaths = 1;

/* One commit attempt by a rank's publish or by the broker. */
inline commit() {
  L = latest;
  v = L + 1;
  if
  :: v > MAXV -> skip
  :: else ->
     if
     :: published[0] == v ->
        if
        :: published[1] == v ->
           atomic {                                    /* the claim: compare-and-swap on the record */
             if
             :: rec[v % RING] == PENDING + v -> rec[v % RING] = v; claimed = true
             :: rec[v % RING] == v -> claimed = true   /* claimed by a caller that may have died */
             :: else -> claimed = false                /* not this version's record */
             fi
           }
           if
           :: claimed && dies && deaths > 0 -> deaths--  /* dies after its claim */
           :: claimed ->
              atomic {                                 /* latest: compare-and-swap from v - 1 */
                if
                :: latest == L ->
                   assert(commits[v] == 0);            /* exactly once */
                   assert(rec[v % RING] == v);         /* the record holds the version committed */
                   commits[v]++;
                   latest = v
                :: else -> skip
                fi
              }
           :: else -> skip
           fi
        :: else -> skip
        fi
     :: else -> skip
     fi
  fi;
  claimed = false; L = 0; v = 0
}

proctype Rank(byte k) {
  byte n, L, v;
  bool claimed, dies;
  for (n : 1 .. MAXV) {
    latest == n - 1;                                   /* lockstep: begin waits for the commit */
    if
    :: k == 0 -> rec[n % RING] = 0; rec[n % RING] = PENDING + n
    :: else -> skip
    fi;
    published[k] = n;
    if
    :: deaths > 0 -> deaths--                         /* dies before its commit: taken over */
    :: dies = true; commit(); dies = false            /* may die after its claim */
    :: commit()
    fi
  }
}

/* The broker tries when both ranks have published the version after latest, a bounded number of times: a
 * version that no attempt can commit (a claimant's death nobody finishes) leaves the ranks waiting for ever,
 * an invalid end state, instead of an endless loop of attempts that a safety check would not see. */
proctype Broker() {
  byte L, v, tries = 3 * MAXV + 3;
  bool claimed, dies;
  do
  :: latest == MAXV || tries == 0 -> break
  :: published[0] == latest + 1 && published[1] == latest + 1 && tries > 0 -> tries--; commit()
  od
}

init {
  atomic {
    run Rank(0);
    run Rank(1);
    run Broker()
  }
  _nr_pr == 1;
  assert(latest == MAXV)
}
