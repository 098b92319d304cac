/*
 * GPU arms (core/arms.hpp, libclient/cuda/gpu_arms.cpp) as a Promela model, checked with spin (see check.sh).
 *
 * A reader arms slot generations 1..GENS in turn, each for the next version: it stores the slot's version and
 * then its state ARMED (one step: the state store publishes the rest), loads latest, and, if the version is out
 * already, withdraws the arm (compare-and-swap ARMED -> WITHDRAWN, then the word gets token + 1); a withdraw
 * that loses to a claim leaves an enqueued arm. An enqueued arm's stream waits until the word reaches its token
 * (cyclic >=), then its guard runs the copies if the word is exactly the token. Meanwhile its host either waits
 * for the version and withdraws it if unclaimed (as wb_armed_wait does), or gives up first (a release, or a hold
 * that runs out: wb_armed_wait then copies on its own), which withdraws it too. The slot is armed again only once the stream is past the wait. A publisher publishes the
 * versions: latest, then a claim of an ARMED slot of that version (compare-and-swap -> CLAIMED, then the word gets
 * the token, written later: its stream's write may land at any time, even after the slot moved on). Tokens are
 * gen * 16 + version, so a late write of an earlier generation is below every later token.
 *
 * Checked: the copies run only for a published version, claimed and never withdrawn, and read it while the
 * reader still holds it (before the host moved on); no arm is both claimed and withdrawn; every stream's wait
 * passes (no invalid end state: a wait left forever would be one).
 */
#ifndef GENS
#define GENS 3
#endif

#define FREE 0
#define ARMED 2
#define CLAIMED 3
#define WITHDRAWN 4

byte latest;
byte state;      /* the slot's kind */
byte gen;        /* the slot's generation (the state word holds both) */
byte version;    /* the armed version */
byte word;       /* what the stream waits on */
byte pending;    /* a claimed token the publisher's stream has not written yet (0: none) */
bool copied[GENS + 1];
bool holding;    /* the reader's host still holds the armed version (its lease) */

#define TOKEN(g, v) ((g) * 16 + (v))

proctype Publisher() {
  byte v = 1;
  do
  :: v <= GENS ->
     latest = v;                      /* the version is out */
     atomic {                         /* the claim: compare-and-swap on the state word */
       if
       :: state == ARMED && version == v -> state = CLAIMED; pending = TOKEN(gen, v)
       :: else -> skip
       fi
     }
     v++
  :: pending != 0 -> word = pending; pending = 0   /* the stream's write lands, whenever */
  :: v > GENS && pending == 0 -> break
  od
}

proctype Reader() {
  byte g = 1, v, my, l;
  bool enqueued, runs;
  do
  :: g <= GENS ->
     v = g;
     atomic { gen = g; version = v; word = 0; state = ARMED }  /* reserve + arm (stores, then the state) */
     my = TOKEN(g, v);
     l = latest;
     enqueued = true;
     if
     :: l >= v ->
        atomic { if :: state == ARMED -> state = WITHDRAWN; enqueued = false :: else -> skip fi }
        if :: !enqueued -> word = my + 1 :: else -> skip fi   /* lost to a claim: the token comes */
     :: else -> skip
     fi;
     holding = true;
     if
     :: enqueued ->
        /* the host: waits for the version, or gives up first; either way an unclaimed arm is withdrawn */
        if
        :: latest >= v -> skip
        :: true -> skip
        fi;
        atomic { if :: state == ARMED -> state = WITHDRAWN; runs = false :: else -> runs = true fi }
        if :: !runs -> word = my + 1 :: else -> skip fi;
        /* the stream: its wait passes once the word reaches the token, then the guard */
        (word >= my);
        if
        :: word == my ->
           assert(latest >= v);       /* a published version */
           assert(state == CLAIMED);  /* claimed, never withdrawn */
           assert(holding);           /* read under the reader's lease */
           copied[g] = true
        :: else -> skip
        fi
     :: else -> skip
     fi;
     holding = false;                  /* the stream is past the wait: the host lets the version go */
     atomic { state = FREE }
     g++
  :: g > GENS -> break
  od
}

init {
  atomic { run Publisher(); run Reader() }
}
