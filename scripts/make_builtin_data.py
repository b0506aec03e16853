r"""Writes the built-in data set shipped in prompt_tuning/assets/builtin/ (re-run to rebuild it).

  .venv/bin/python scripts/make_builtin_data.py --output=prompt_tuning/assets/builtin

Short review-like sentences, each with a sentiment (negative/positive) and a topic (sports,
food, music, travel) that can be read from its words. The same sentence serves two tasks, so
a model that is not told which task is asked cannot know which label to give: that is what a
prompt has to learn in the taskless setting. Deterministic for a given --seed.
"""

from __future__ import annotations

import argparse
import csv
import os
import random

TOPICS = {
    "sports": dict(
        things=["match", "game", "final", "race", "season opener", "derby", "tournament",
                "second half", "penalty shootout", "relay"],
        places=["the stadium", "the arena", "the track", "the home ground", "the velodrome"],
        people=["the striker", "the coach", "the goalkeeper", "the home team", "the referee",
                "our captain"]),
    "food": dict(
        things=["pasta", "soup", "dessert", "curry", "breakfast", "pizza", "tasting menu",
                "bread", "salad", "coffee"],
        places=["the bistro", "the new restaurant", "the corner cafe", "the food market",
                "the bakery"],
        people=["the chef", "the waiter", "the baker", "the kitchen staff", "the sommelier"]),
    "music": dict(
        things=["concert", "album", "encore", "guitar solo", "opening set", "symphony",
                "new single", "chorus", "drum line", "acoustic session"],
        places=["the concert hall", "the festival", "the jazz club", "the opera house",
                "the record store"],
        people=["the singer", "the band", "the orchestra", "the pianist", "the drummer"]),
    "travel": dict(
        things=["flight", "hotel room", "train ride", "beach", "guided tour", "cruise",
                "road trip", "hostel", "ferry crossing", "mountain hike"],
        places=["the airport", "the old town", "the resort", "the island", "the station"],
        people=["the tour guide", "the pilot", "the receptionist", "the driver",
                "the host family"]),
}
SENTIMENT = {
    "positive": dict(
        adjectives=["wonderful", "brilliant", "delightful", "superb", "excellent", "lovely",
                    "fantastic", "memorable", "charming", "outstanding"],
        verbs=["loved", "enjoyed", "adored", "admired", "treasured"],
        endings=["and I would gladly go back.", "and it made my week.",
                 "and everyone left smiling.", "and it was worth every penny.",
                 "and I keep telling friends about it."]),
    "negative": dict(
        adjectives=["dreadful", "awful", "dull", "disappointing", "terrible", "miserable",
                    "boring", "sloppy", "forgettable", "painful"],
        verbs=["hated", "regretted", "disliked", "endured", "resented"],
        endings=["and I will never go back.", "and it ruined my week.",
                 "and everyone left annoyed.", "and it was a waste of money.",
                 "and I warned my friends about it."]),
}
TEMPLATES = [
    "The {thing} at {place} was {adj} {ending}",
    "I {verb} the {thing}; {person} seemed {adj} too.",
    "Honestly, {person} made the {thing} feel {adj}.",
    "We {verb} every minute of the {thing} at {place}.",
    "What a {adj} {thing} from {person} {ending}",
    "After the {thing}, {place} felt {adj} {ending}",
    "My friends and I {verb} the {thing}, which was {adj}.",
    "{person_cap} delivered a {adj} {thing} at {place}.",
]


def sentence(rng: random.Random, topic: str, sentiment: str) -> str:
    t, s = TOPICS[topic], SENTIMENT[sentiment]
    person = rng.choice(t["people"])
    return rng.choice(TEMPLATES).format(
        thing=rng.choice(t["things"]), place=rng.choice(t["places"]), person=person,
        person_cap=person[0].upper() + person[1:], adj=rng.choice(s["adjectives"]),
        verb=rng.choice(s["verbs"]), ending=rng.choice(s["endings"]))


def examples(rng: random.Random, count: int, seen: set[str]) -> list[tuple[str, str, str]]:
    out = []
    while len(out) < count:
        topic, sentiment = rng.choice(sorted(TOPICS)), rng.choice(sorted(SENTIMENT))
        text = sentence(rng, topic, sentiment)
        if text not in seen:  # no sentence is shared between splits
            seen.add(text)
            out.append((text, sentiment, topic))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--output", default="prompt_tuning/assets/builtin")
    parser.add_argument("--train", type=int, default=4000)
    parser.add_argument("--validation", type=int, default=400)
    parser.add_argument("--test", type=int, default=400)
    parser.add_argument("--seed", type=int, default=20211107)
    args = parser.parse_args()
    rng, seen = random.Random(args.seed), set()
    os.makedirs(args.output, exist_ok=True)
    for split in ("train", "validation", "test"):
        rows = examples(rng, getattr(args, split), seen)
        path = os.path.join(args.output, f"{split}.tsv")
        with open(path + ".tmp", "w", newline="") as f:
            writer = csv.writer(f, delimiter="\t", lineterminator="\n")
            writer.writerow(["idx", "sentence", "sentiment", "topic"])
            writer.writerows((i, *row) for i, row in enumerate(rows))
        os.replace(path + ".tmp", path)
        print(f"wrote {len(rows)} examples to {path}")


if __name__ == "__main__":
    main()
