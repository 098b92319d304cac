/*
 * The weightbus version protocol as a Promela model, checked with spin (see check.sh).
 *
 * What is modelled is what libclient/update.cpp, snapshot.cpp and topic_state.cpp do in shared memory:
 * the floor / lease-word handshake, the per-tensor replica choice, in-place writing marks (R = 1), publish,
 * release, the futex sleeps (a sleep is a guard on a sequence counter read before the check, so a lost wake-up
 * shows up as a deadlock), a publisher that dies mid-update (the broker ends its update) and a reader that dies
 * holding a lease (the broker clears it later), and, with -DARM, a reader that arms (wb_plan_arm: it leases the
 * version after the latest before it exists, and reads it once published). Each shared-memory load or store is
 * one step. The futex
 * sequence counters wrap at 8: a sleeper that misses a change shows up as a deadlock, so the wrap can only
 * add false alarms, never hide a lost wake-up.
 *
 * Checked: no torn read (every tensor a leased reader looks at holds exactly the bytes of the version that last
 * changed it as of the lease, before and after the publisher's steps), no lost version (versions are published
 * one after another and `latest` never goes back), no deadlock (no invalid end state), no lease leak (every
 * lease word is zero at the end).
 */
#ifndef R
#define R 2
#endif
#define T 2           /* tensors */
#define READERS 2
#ifndef ROUNDS
#define ROUNDS 2      /* snapshots each reader takes */
#endif
#ifndef MAXV
#define MAXV 3        /* versions published */
#endif
#define NEVER 255     /* replica holds no version */
#define TORN 254      /* bytes being written */

typedef Tensor {
  byte rv[R];       /* replica_version: the version whose bytes each replica holds */
  byte data[R];     /* the bytes: the version that wrote them, or TORN */
  bool marked;      /* R = 1: written in place by an update not yet published */
};

Tensor tensor[T];
byte latest;
byte floor;
byte dirty;
byte lease[READERS];
byte version_seq;
byte release_seq;
bool done;
byte last_change[T * (MAXV + 1)];  /* ghost: the version that last wrote tensor t as of version v */
#ifndef CRASHES
#define CRASHES 1
#endif
byte crashes = CRASHES;            /* publisher deaths to explore */

#define LC(t, v) last_change[(t) * (MAXV + 1) + (v)]

/* A leased reader looks tensor t up at version v (replica_for_version) and checks its bytes. One step: the
 * words it reads change only at a publish, and each is a single atomic load in the library. */
inline check_tensor(t, v) {
d_step {
  best = NEVER;
  k = 0;
  do
  :: k < R ->
     x = tensor[t].rv[k];
     if
     :: x != NEVER && x <= v && (best == NEVER || x >= bv) -> best = k; bv = x
     :: else -> skip
     fi;
     k++
  :: else -> break
  od;
  assert(best != NEVER);
  assert(tensor[t].data[best] == LC(t, v));
  best = 0; bv = 0; k = 0; x = 0
}
}

proctype Reclaim(byte i) {
  /* the broker saw reader i's socket close: it clears the lease and wakes a waiting publisher */
  lease[i] = 0;
  release_seq = (release_seq + 1) % 8
}

/* Reader i reads version v: every tensor twice (the publisher may run in between), then releases its lease or
 * dies holding it. */
inline read_leased(v) {
  t = 0;
  do :: t < T -> check_tensor(t, v); t++ :: else -> break od;
  t = 0;
  do :: t < T -> check_tensor(t, v); t++ :: else -> break od;
  t = 0;
  last = v;
  rounds++;
  if
  :: lease[i] = 0; release_seq = (release_seq + 1) % 8                          /* release */
  :: run Reclaim(i); break                                                      /* dies holding the lease */
  fi
}

proctype Reader(byte i) {
  byte v, f, t, k, x, best, bv, seen, last, rounds;
  do
  :: rounds == ROUNDS || (done && latest == last) -> break
  :: else ->
     seen = version_seq;
     v = latest;
     if
     :: v == last -> (version_seq != seen || done); seen = 0    /* wb_topic_wait */
#ifdef ARM
     :: i == 0 && v == last && v < MAXV ->                      /* wb_plan_arm: a lease of latest + 1, then floor */
        seen = 0;
        v++;
        lease[i] = v;
        f = floor;
        if
        :: f > v -> lease[i] = 0; release_seq = (release_seq + 1) % 8; f = 0   /* published, and a later begun */
        :: else ->
           f = 0;
           do                                                   /* wb_armed_wait: futex sleep until published */
           :: seen = version_seq;
              if
              :: latest >= v -> seen = 0; break
              :: else -> (version_seq != seen)
              fi
           od;
           if
           :: dirty > 0 -> lease[i] = 0; release_seq = (release_seq + 1) % 8; rounds++   /* WB_E_DIRTY */
           :: else -> read_leased(v)                            /* no floor check: every begin after the arm */
           fi                                                   /* saw its lease */
        fi
#endif
     :: else ->
        lease[i] = v;                                           /* acquire: lease word, then floor */
        f = floor;
        if
        :: dirty > 0 -> lease[i] = 0; release_seq = (release_seq + 1) % 8; rounds++; f = 0; seen = 0   /* WB_E_DIRTY */
        :: dirty == 0 && v < f ->
           lease[i] = 0; release_seq = (release_seq + 1) % 8; f = 0;
           (version_seq != seen || done); seen = 0              /* an R = 1 update holds it: wait */
        :: dirty == 0 && v >= f ->
           f = 0; seen = 0;
           read_leased(v)
        fi
     fi;
     v = 0
  od
}

/* R >= 2: a replica of t that is neither the newest nor read by a pinned version (choose_replica). */
inline choose_replica(t) {
d_step {
  newest = 0;
  k = 0;
  do
  :: k < R ->
     if
     :: tensor[t].rv[k] != NEVER && (tensor[t].rv[newest] == NEVER || tensor[t].rv[k] > tensor[t].rv[newest]) ->
        newest = k
     :: else -> skip
     fi;
     k++
  :: else -> break
  od;
  chosen = NEVER;
  k = 0;
  do
  :: k < R ->
     free = (k != newest);
     if
     :: free && tensor[t].rv[k] != NEVER ->
        until = tensor[t].rv[newest];
        o = 0;
        do
        :: o < R ->
           if
           :: tensor[t].rv[o] != NEVER && tensor[t].rv[o] > tensor[t].rv[k] && tensor[t].rv[o] < until ->
              until = tensor[t].rv[o]
           :: else -> skip
           fi;
           o++
        :: else -> break
        od;
        o = 0;
        do
        :: o < READERS -> free = free && !(pinned[o] != 0 && pinned[o] >= tensor[t].rv[k] && pinned[o] < until); o++
        :: else -> break
        od
     :: else -> skip
     fi;
     if
     :: free && (chosen == NEVER || tensor[t].rv[k] == NEVER ||
                 (tensor[t].rv[chosen] != NEVER && tensor[t].rv[k] < tensor[t].rv[chosen])) -> chosen = k
     :: else -> skip
     fi;
     k++
  :: else -> break
  od;
  assert(chosen != NEVER);
  newest = 0; k = 0; o = 0; until = 0; free = false
}
}

/* topic_state::end_unpublished_update: what abort does, and the broker when the publisher dies. */
inline end_unpublished_update() {
d_step {
  if
  :: R == 1 ->
     dirty = 0;
     t = 0;
     do :: t < T -> if :: tensor[t].marked -> dirty++ :: else -> skip fi; t++ :: else -> break od;
     floor = latest
  :: else -> skip
  fi;
  version_seq = (version_seq + 1) % 8;
  t = 0
}
}

proctype Publisher() {
  byte n, L, t, k, o, i, x, seen, older, newest, chosen, until, recovered;
  bool free, blocked, changed[T];
  byte replica[T];
  byte pinned[READERS];
  do
  :: latest == MAXV -> break
  :: else ->
     L = latest;
     n = L + 1;
     if :: R == 1 -> floor = n :: else -> floor = L fi;         /* begin: floor first, then scan */
scan:
     seen = release_seq;
     older = 0;
     blocked = false;
     i = 0;
     do
     :: i < READERS ->
        x = lease[i];
        pinned[i] = 0;
        if
        :: x != 0 && R == 1 && x <= L -> blocked = true       /* an arm of n (x = n) does not block n */
        :: x != 0 && x < L -> pinned[i] = x; older++           /* two readers on one version count twice: */
        :: else -> skip                                        /* stricter than distinct, still sound */
        fi;
        i++
     :: else -> break
     od;
     if
     :: R > 1 && older > R - 2 -> blocked = true
     :: else -> skip
     fi;
     if
     :: blocked -> (release_seq != seen); goto scan              /* futex sleep on release_seq */
     :: else -> seen = 0; blocked = false; older = 0; x = 0; i = 0
     fi;
     atomic {
       recovered = 0; i = 0; x = 0; older = 0;
       t = 0;
       do
       :: t < T ->
          if :: changed[t] = true :: changed[t] = false fi;
          t++
       :: else -> break
       od;
       t = 0
     };
     t = 0;
     do
     :: t < T ->
        if
        :: changed[t] ->
           if
           :: R == 1 ->
              replica[t] = 0;
              if :: tensor[t].marked -> recovered++ :: else -> skip fi;
              tensor[t].marked = true
           :: else ->
              choose_replica(t);
              replica[t] = chosen
           fi;
           tensor[t].data[replica[t]] = TORN;                  /* the bytes are being written */
           tensor[t].data[replica[t]] = n
        :: else -> skip
        fi;
        t++
     :: else -> t = 0; break
     od;
     if
     :: crashes > 0 -> crashes--; end_unpublished_update()     /* dies before publishing */
     :: true ->
        t = 0;
        do
        :: t < T ->
           atomic {
             if
             :: changed[t] -> LC(t, n) = n; tensor[t].rv[replica[t]] = n; tensor[t].marked = false
             :: else -> LC(t, n) = LC(t, L)
             fi;
             t++
           }
        :: else -> t = 0; break
        od;
        dirty = dirty - recovered;
        assert(latest == L);                                   /* no lost or skipped version */
        latest = n;
        version_seq = (version_seq + 1) % 8
     fi;
     d_step {
       recovered = 0;
       t = 0;
       do
       :: t < T -> changed[t] = false; replica[t] = 0; t++
       :: t == T -> break
       od;
       i = 0;
       do
       :: i < READERS -> pinned[i] = 0; i++
       :: i == READERS -> break
       od;
       t = 0; i = 0
     }
  od;
  done = true;
  version_seq = (version_seq + 1) % 8
}

init {
  byte t, i;
  atomic {
    t = 0;
    do
    :: t < T ->
       tensor[t].rv[0] = 0;
       tensor[t].data[0] = 0;
       i = 1;
       do :: i < R -> tensor[t].rv[i] = NEVER; tensor[t].data[i] = NEVER; i++ :: else -> break od;
       LC(t, 0) = 0;
       t++
    :: else -> break
    od;
    run Publisher();
    i = 0;
    do :: i < READERS -> run Reader(i); i++ :: else -> break od
  }
  _nr_pr == 1;                                                 /* everyone finished */
  i = 0;
  do :: i < READERS -> assert(lease[i] == 0); i++ :: else -> break od;   /* no lease leaked */
  assert(latest == MAXV)
}
