"""Seeded, deterministic simulated customers: who writes to the brand, what they say, and when."""

from __future__ import annotations

import random
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "CUSTOMERS",
    "ArrivalProcess",
    "Customer",
    "FollowUp",
    "Mention",
    "Thread",
    "Topic",
    "TrafficGenerator",
    "is_survey_prompt",
]


class Topic(StrEnum):
    """What a simulated message is about; decides its wording and how the customer reacts to a reply."""

    ORDER_STATUS = "order_status"
    SHIPPING = "shipping"
    BILLING = "billing"
    LOGIN = "login"
    RETURNS = "returns"
    APP_BUG = "app_bug"
    COMPLAINT = "complaint"
    PRAISE = "praise"
    THANKS = "thanks"
    OUTAGE = "outage"
    ANNOUNCEMENT = "announcement"
    GENERAL = "general"


class Thread(StrEnum):
    """Where a generated status goes in the conversation graph (the server resolves it to an id)."""

    NEW = "new"  # a fresh top-level status
    SELF = "self"  # continues the customer's own previous status
    ANNOUNCEMENT = "announcement"  # replies to the brand's pinned announcement


@dataclass(frozen=True, slots=True)
class Customer:
    """One simulated person. ``domain`` is None for accounts local to the sandbox instance."""

    username: str
    domain: str | None
    display_name: str
    language: str = "en"  # the language they sometimes write in instead of English
    temper: float = 0.0  # -1 sunny .. +1 grumpy: skews topic choice and tone
    weight: float = 1.0  # how often they write, relative to others
    first_seen: int = 0  # index of the generated message from which they can appear (newcomers)

    @property
    def acct(self) -> str:
        return self.username if self.domain is None else f"{self.username}@{self.domain}"


#: The cast. Regulars have a higher weight; those with ``first_seen > 0`` are newcomers who show up later.
CUSTOMERS: tuple[Customer, ...] = (
    Customer("maria", "fosstodon.example", "María José Ortega", "es", 0.1, 2.5),
    Customer("sam", None, "sam 🌻", temper=-0.3, weight=2.2),
    Customer("jonas", "chaos.example", "Jonas Becker", "de", 0.2, 1.8),
    Customer("priya", "hachyderm.example", "Priya Raman", weight=1.8),
    Customer("grumpycat", None, "grumpy cat 😾", temper=0.9, weight=1.6),
    Customer("soren", "mastodon.example", "Søren Kjær", weight=1.0),
    Customer("zoe", "mstdn.example", "Zoë Dubois", "fr", -0.2, 1.0),
    Customer("lukasz", "101010.example", "Łukasz Wiśniewski", weight=0.9),
    Customer("ngozi", None, "Ngozi Okafor", temper=-0.4, weight=1.0),
    Customer("thao", "mas.example", "Nguyễn Thảo", weight=0.8),
    Customer("ayse", "mastodon.example", "Ayşe Yılmaz", temper=0.3, weight=0.9),
    Customer("francois", "piaille.example", "François Lefèvre", "fr", 0.4, 0.9),
    Customer("bjorn", "mastodon.example", "Björn Åkesson", weight=0.7),
    Customer("chiara", "mastodon.example", "Chiara Bellucci ✨", temper=-0.5, weight=0.8),
    Customer("kenji", "mstdn.example", "Kenji Watanabe", weight=0.7),
    Customer("dev", None, "Dev ☕", temper=0.2, weight=1.2),
    Customer("tomh", "social.example", "Tom Hughes", temper=0.5, weight=0.9, first_seen=8),
    Customer("lena", "chaos.example", "Lena Schröder", "de", 0.0, 1.0, first_seen=15),
    Customer("carlos", "mastodon.example", "Carlos Peña", "es", 0.3, 1.0, first_seen=24),
    Customer("aoife", "mastodon.example", "Aoife Ní Bhriain", temper=-0.2, first_seen=34),
    Customer("rkumar", "fosstodon.example", "Rahul Kumar", temper=0.1, first_seen=105),
    Customer("emily", "hachyderm.example", "Emily Chen", temper=-0.1, first_seen=58),
    Customer("oskar", "mastodon.example", "Oskar Nowak", temper=0.6, first_seen=72),
    Customer("fatima", "mastodon.example", "Fatima Zahra El Idrissi", first_seen=88),
    Customer("jpmorin", "mastodon.example", "Jean-Pierre Morin", "fr", 0.2, first_seen=105),
    Customer("mika", "social.example", "Mika Virtanen", temper=-0.3, first_seen=125),
)


@dataclass(frozen=True, slots=True)
class Mention:
    """One generated customer status that mentions the brand."""

    customer: Customer
    text: str
    visibility: str  # "public" | "unlisted" | "private" | "direct"
    language: str
    topic: Topic
    thread: Thread = Thread.NEW


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A customer's answer to an agent reply: what they write and how long after the reply."""

    text: str
    delay: float  # seconds after the agent's reply


_PRODUCTS = (
    "Aero kettle",
    "Nimbus headphones",
    "Trail backpack 28L",
    "Loop smart plug",
    "Fika mug set",
    "Drift desk lamp",
    "Pulse fitness band",
    "Terra plant pot",
    "Orbit phone case",
)
_CARRIERS = ("DHL", "PostNord", "UPS", "Royal Mail", "DPD", "GLS", "La Poste")
_COUNTRIES = ("Iceland", "Portugal", "Poland", "Ireland", "Norway", "Canada", "Estonia", "Greece")
_PLATFORMS = ("Android 14", "iOS 17.5", "iOS 18", "a Pixel 8", "an old iPad", "Firefox on Linux", "Safari")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "the weekend")
_COLOURS = ("blue", "sage green", "black", "sand", "the large size", "the smaller size")
_CITIES = ("Leipzig", "Rotterdam", "Lyon", "Malmö", "Bristol", "Gdańsk")
_CURRENCIES = ("€", "$", "£")

# Bodies: each is the text after "@care " (and an optional greeting). Placeholders are filled from the RNG.
_BODIES: dict[Topic, tuple[str, ...]] = {
    Topic.ORDER_STATUS: (
        "my order {order} still says 'processing' after {days} days, any news?",
        "any update on order {order}? it was supposed to arrive on {weekday}",
        "ordered the {product} on {weekday} and the tracking hasn't moved since. order {order}",
        "is there a way to see where order {order} actually is? the page just says 'label created'",
        "order {order} shows as shipped but {carrier} has never heard of the tracking number",
        "how long does 'preparing your order' normally take? it's been {days} days ({order})",
    ),
    Topic.SHIPPING: (
        "{carrier} says my parcel was delivered but there's nothing here. order {order}",
        "do you ship to {country}? couldn't find it in the checkout list",
        "tracking for {order} says 'exception' since {weekday} {tracking}",
        "how long does express shipping to {country} usually take?",
        "the parcel arrived but the box was crushed and the {product} is dented",
        "can I change the delivery address for {order}? I'm away until next week",
    ),
    Topic.BILLING: (
        "I was charged twice for order {order} ({amount} each). can someone look into it?",
        "my card got declined at checkout but the bank says everything is fine?",
        "where do I download an invoice for {order}? need it for expenses",
        "the subscription renewed even though I cancelled it last month",
        "the discount code from your newsletter isn't applied at checkout, total is still {amount}",
        "got a refund email for {amount} but nothing on my statement after {days} days",
    ),
    Topic.LOGIN: (
        "I can't log in, the password reset email never arrives (checked spam)",
        "the app keeps logging me out every few minutes on {platform}",
        "the 2FA code is always 'invalid' for me, am I doing something wrong?",
        "locked out of my account after too many attempts, how long does that last?",
        "changed my email address and now I can't sign in with either of them",
    ),
    Topic.RETURNS: (
        "how do I return the {product}? it's the wrong size",
        "sent back order {order} {days} days ago, still no refund",
        "the return label link gives me an error: {return_link}",
        "can I exchange instead of returning? want the {product} in {colour}",
        "do I have to pay for return shipping if the {product} arrived broken?",
    ),
    Topic.APP_BUG: (
        "the app crashes when I open 'my orders' on {platform} (v{version})",
        "bug: the basket total doesn't update when I remove items. {platform}, app {version}",
        "dark mode makes the checkout button invisible lol {screenshot}",
        "push notifications stopped working after the last update ({version})",
        "search in the app only ever shows the {product}, whatever I type 😅",
    ),
    Topic.COMPLAINT: (
        "third time asking. order {order}. {days} days. nobody answers. this is ridiculous",
        "honestly disappointed. the {product} broke after a week and support emails go unanswered",
        "been waiting on the support chat for 40 minutes. is anyone actually working there??",
        "WHERE IS MY ORDER. {order}. paid {amount} for express shipping.",
        "your 'next day delivery' took {days} days and nobody even said sorry",
        "cancelled order {order} {days} days ago and I still haven't seen my money",
    ),
    Topic.PRAISE: (
        "the new {product} is fantastic, thanks for the quick delivery!",
        "shoutout to whoever packed my order, the handwritten note made my day 💚",
        "your team sorted out my issue in five minutes yesterday. impressed!",
        "the {product} arrived a day early and it's even nicer than the photos ✨",
        "love that the packaging is plastic-free now, keep it up",
    ),
    Topic.THANKS: (
        "thanks for the help earlier, all sorted now 🙏",
        "got the refund, thank you!",
        "replacement {product} arrived today, thanks a lot",
        "just wanted to say thanks to whoever answered my DM last night",
    ),
    Topic.OUTAGE: (
        "is the site down? checkout just spins",
        "getting 'something went wrong' on every page right now",
        "the app won't load at all here ({platform}). outage?",
        "can't pay, the payment page times out. is it just me?",
        "your status page says all good but nothing loads {status_link}",
    ),
    Topic.ANNOUNCEMENT: (
        "mine too, order {order} has been sitting in {city} since {weekday}",
        "thanks for the heads-up! any idea when it'll be back to normal?",
        "does this also affect express orders? I need the {product} by {weekday}",
        "could you at least refund the shipping on delayed orders?",
    ),
}

# A customer continuing their own thread before anyone answered.
_SELF_BODIES = (
    "any news on this?",
    "bumping this 👆",
    "update: still nothing",
    "hello?? still waiting here",
    "I sent the details by email as well",
)

_SELF_ORDER_BODIES = ("also forgot to say: it's order {order}", "the order number is {order} btw")
# Topics after which a customer may nudge their own thread while waiting for an answer.
_WAITING = frozenset(
    (Topic.ORDER_STATUS, Topic.SHIPPING, Topic.BILLING, Topic.LOGIN, Topic.RETURNS, Topic.APP_BUG, Topic.COMPLAINT)
)
_ABOUT_AN_ORDER = frozenset((Topic.ORDER_STATUS, Topic.SHIPPING, Topic.BILLING, Topic.RETURNS, Topic.COMPLAINT))

_FOREIGN_BODIES: dict[str, tuple[tuple[Topic, str], ...]] = {
    "de": (
        (Topic.ORDER_STATUS, "Hallo, meine Bestellung {order} ist seit {days} Tagen unterwegs, gibt es ein Update?"),
        (Topic.APP_BUG, "die App stürzt bei mir ständig ab ({platform}). Ist das bekannt?"),
        (Topic.RETURNS, "wie kann ich den {product} zurückschicken? Danke!"),
    ),
    "es": (
        (Topic.ORDER_STATUS, "hola, ¿podéis revisar el pedido {order}? lleva {days} días sin moverse"),
        (Topic.BILLING, "me habéis cobrado dos veces el pedido {order} 😕"),
        (Topic.SHIPPING, "¿hacéis envíos a {country}?"),
    ),
    "fr": (
        (Topic.ORDER_STATUS, "bonjour, ma commande {order} n'est toujours pas arrivée, une idée ?"),
        (Topic.LOGIN, "impossible de me connecter depuis ce matin, c'est normal ?"),
        (Topic.PRAISE, "merci pour le {product}, il est parfait 💚"),
    ),
}

_GREETINGS = ("", "", "", "hi! ", "hey, ", "hello, ", "hi there, ", "quick question: ", "morning! ")
_CLOSERS: dict[str, tuple[str, ...]] = {
    "calm": ("", "", " thanks!", " thx", " 🙏", " any help appreciated", " cheers"),
    "upset": ("", " 😕", " 🤔", " not great tbh", " please sort this out"),
    "angry": ("", " 😡", " #fail", " unbelievable", " #customerservice"),
    "happy": ("", " 🎉", " 💚", " ✨"),
}

_FOLLOW_UPS_RESOLVED = (
    "thanks, that worked!",
    "perfect, got it now 🙏",
    "ah ok, found it. thanks!",
    "cheers, all sorted",
    "that did it, thank you so much",
)
_FOLLOW_UPS_FURTHER: dict[Topic, tuple[str, ...]] = {
    Topic.ORDER_STATUS: ("ok thanks, and if it hasn't moved by {weekday}?", "sent you a DM with my address"),
    Topic.SHIPPING: ("ok, do I need to be home to sign for it?", "the courier says to contact you, so…?"),
    Topic.BILLING: ("ok, but how long will the refund take?", "which email should I send the bank statement to?"),
    Topic.LOGIN: ("still seeing the same error after reinstalling 😕", "that link says 'expired', can you resend?"),
    Topic.RETURNS: ("do I need to print the label or is the QR code enough?", "and the refund goes to my card?"),
    Topic.APP_BUG: ("still crashes on {version} after clearing the cache", "sent the screenshot by DM"),
    Topic.COMPLAINT: ("that doesn't really help, I've already tried that twice", "so what happens now?"),
    Topic.OUTAGE: ("working again now, thanks", "still down for me"),
}
_FOLLOW_UPS_HAPPY = ("❤️", "you're welcome!", "🙌")
_FOLLOW_UPS_FOREIGN = {"de": ("danke, hat geklappt!",), "es": ("¡gracias!",), "fr": ("merci !",)}


class TrafficGenerator:
    """Produces an endless, seed-determined sequence of customer mentions.

    Two generators with the same seed and brand produce identical sequences; nothing here reads a clock.
    """

    def __init__(self, *, seed: int, brand_handle: str = "care") -> None:
        self._seed = seed
        self._brand = brand_handle
        self._rng = random.Random(seed)
        self._count = 0
        # Newcomers arrive a little earlier or later depending on the seed.
        self._first_seen = {c.acct: c.first_seen + self._rng.randint(0, 4) if c.first_seen else 0 for c in CUSTOMERS}
        self._introduced: set[str] = set()
        self._last: dict[str, Mention] = {}
        self._incident_left = 0

    @property
    def customers(self) -> tuple[Customer, ...]:
        return CUSTOMERS

    @property
    def generated(self) -> int:
        """How many mentions this generator has produced."""
        return self._count

    def fast_forward(self, count: int) -> None:
        """Continue after the first ``count`` mentions, as if they had just been produced: a sandbox restarted
        on its saved world picks up its sequence where it stopped (issue 19 #6)."""
        while self._count < count:
            self.next_mention()

    def next_mention(self) -> Mention:
        """Return the next generated customer mention."""
        rng = self._rng
        index = self._count
        self._count += 1
        customer = self._pick_customer(index)
        if self._incident_left == 0 and rng.random() < 0.025:
            self._incident_left = rng.randint(3, 7)
        in_incident = self._incident_left > 0
        if in_incident:
            self._incident_left -= 1

        previous = self._last.get(customer.acct)
        roll = rng.random()
        if previous is not None and previous.topic in _WAITING and not in_incident and roll < 0.18:
            mention = self._continuation(customer, previous)
        elif roll > 0.93:
            mention = self._compose(customer, Topic.ANNOUNCEMENT, thread=Thread.ANNOUNCEMENT)
        else:
            topic = Topic.OUTAGE if in_incident and rng.random() < 0.6 else self._pick_topic(customer)
            mention = self._compose(customer, topic, thread=Thread.NEW)
        self._last[customer.acct] = mention
        return mention

    def follow_up(
        self, *, ordinal: int, topic: Topic, language: str, depth: int, force: bool = False
    ) -> FollowUp | None:
        """Decide how a customer reacts to the brand's ``ordinal``-th reply (0-based).

        Args:
            ordinal: Index of the agent reply; each gets its own RNG so that the answer does not depend on
                how replies and generated traffic interleave.
            topic: What the customer originally wrote about.
            language: The language of the customer's status that was answered.
            depth: How many follow-ups the customer already posted in this thread.
            force: Always produce a follow-up (tests and demos).

        Returns:
            The follow-up, or None when the customer stays silent.
        """
        rng = random.Random(f"{self._seed}:follow-up:{ordinal}")
        chance = {Topic.PRAISE: 0.2, Topic.THANKS: 0.1, Topic.ANNOUNCEMENT: 0.35}.get(topic, 0.6) / (1 + depth)
        if not force and rng.random() >= chance:
            return None
        delay = rng.uniform(20.0, 120.0)
        if language in _FOLLOW_UPS_FOREIGN:
            body = rng.choice(_FOLLOW_UPS_FOREIGN[language])
        elif topic in (Topic.PRAISE, Topic.THANKS):
            body = rng.choice(_FOLLOW_UPS_HAPPY)
        elif topic in _FOLLOW_UPS_FURTHER and rng.random() < 0.45:
            body = self._fill(rng.choice(_FOLLOW_UPS_FURTHER[topic]), rng)
        else:
            body = rng.choice(_FOLLOW_UPS_RESOLVED)
        return FollowUp(text=f"@{self._brand} {body}", delay=delay)

    def survey_answer(self, *, ordinal: int, force: bool = False) -> FollowUp | None:
        """How a customer answers a Net Easy survey (the brand's ``ordinal``-th reply): mostly a plausible score.

        About a quarter never answer; some answer hours or even more than a week later; most use a digit,
        some words, keycap emoji, an unclear range, nonsense, or a score with a new question.

        Args:
            ordinal: Index of the agent reply that asked; seeds the answer.
            force: Always answer, soon (tests and demos).

        Returns:
            The answer, or None for a customer who ignores the survey.
        """
        rng = random.Random(f"{self._seed}:survey:{ordinal}")
        silent = rng.random() < 0.25
        if silent and not force:
            return None
        roll = rng.random()
        if force or roll < 0.75:
            delay = rng.uniform(20.0, 150.0)
        elif roll < 0.95:
            delay = rng.uniform(1800.0, 2 * 86400.0)
        else:
            delay = rng.uniform(8 * 86400.0, 10 * 86400.0)  # too late to count
        answers, weights = zip(*_SURVEY_ANSWERS, strict=True)
        body = rng.choices(answers, weights=weights)[0]
        return FollowUp(text=f"@{self._brand} {body}", delay=delay)

    def backlog_ages(self, n: int, *, span: float = 2400.0) -> list[float]:
        """Ages in seconds (oldest first) for ``n`` statuses spread over the last ``span`` seconds."""
        rng = random.Random(f"{self._seed}:backlog")
        return sorted((rng.uniform(30.0, span) for _ in range(n)), reverse=True)

    def announcement(self) -> str:
        """The brand's own pinned status that some customers reply to."""
        carrier = random.Random(f"{self._seed}:announcement").choice(_CARRIERS)
        return (
            f"📦 Heads-up: parcels shipped with {carrier} are running 1–2 days late this week because of "
            "the storms up north. Tracking may lag too.\n\nWe'll keep this thread updated. Thanks for your "
            "patience!"
        )

    # -- internals -------------------------------------------------------------------------------------------

    def _pick_customer(self, index: int) -> Customer:
        rng = self._rng
        for customer in CUSTOMERS:
            first = self._first_seen[customer.acct]
            if first and index >= first and customer.acct not in self._introduced:
                self._introduced.add(customer.acct)
                return customer
        active = [c for c in CUSTOMERS if not self._first_seen[c.acct] or c.acct in self._introduced]
        return rng.choices(active, weights=[c.weight for c in active])[0]

    def _pick_topic(self, customer: Customer) -> Topic:
        grumpy = max(customer.temper, 0.0)
        sunny = max(-customer.temper, 0.0)
        weights: dict[Topic, float] = {
            Topic.ORDER_STATUS: 3.0,
            Topic.SHIPPING: 2.0,
            Topic.BILLING: 1.6,
            Topic.LOGIN: 1.4,
            Topic.RETURNS: 1.4,
            Topic.APP_BUG: 1.4,
            Topic.COMPLAINT: 0.9 + 3.0 * grumpy,
            Topic.PRAISE: 0.6 + 2.0 * sunny,
            Topic.THANKS: 0.4 + 1.0 * sunny,
        }
        return self._rng.choices(list(weights), weights=list(weights.values()))[0]

    def _visibility(self, topic: Topic) -> str:
        # About a fifth of customer care traffic on Mastodon arrives as DMs, more for private matters.
        direct = {
            Topic.BILLING: 0.45,
            Topic.LOGIN: 0.35,
            Topic.RETURNS: 0.25,
            Topic.ORDER_STATUS: 0.25,
            Topic.SHIPPING: 0.2,
            Topic.COMPLAINT: 0.1,
            Topic.PRAISE: 0.04,
            Topic.OUTAGE: 0.03,
            Topic.ANNOUNCEMENT: 0.0,
        }.get(topic, 0.18)
        roll = self._rng.random()
        if roll < direct:
            return "direct"
        if roll < direct + 0.06:
            return "unlisted"
        if roll < direct + 0.09:
            return "private"
        return "public"

    def _compose(self, customer: Customer, topic: Topic, *, thread: Thread) -> Mention:
        rng = self._rng
        if customer.language != "en" and topic is not Topic.ANNOUNCEMENT and rng.random() < 0.45:
            topic, template = rng.choice(_FOREIGN_BODIES[customer.language])
            text = f"@{self._brand} {self._fill(template, rng)}"
            return Mention(customer, text, self._visibility(topic), customer.language, topic, thread)
        visibility = "public" if thread is Thread.ANNOUNCEMENT else self._visibility(topic)
        body = self._fill(rng.choice(_BODIES[topic]), rng)
        mood = self._mood(customer, topic)
        greeting = rng.choice(_GREETINGS) if mood in ("calm", "happy") else ""
        if greeting.startswith("quick question") and not body.endswith("?"):
            greeting = ""
        closer = rng.choice(_CLOSERS[mood])
        if (visibility != "public" and "#" in closer) or not body[-1].isascii():
            closer = ""  # nobody hashtags a DM, and one emoji at the end is enough
        elif closer[1:2].isalpha() and body[-1].isalnum():
            body += rng.choice((",", "."))
        text = f"{greeting}{body}{closer}"
        if mood == "calm" and rng.random() < 0.3:
            text = text[:1].upper() + text[1:]
        return Mention(customer, f"@{self._brand} {text}", visibility, "en", topic, thread)

    def _continuation(self, customer: Customer, previous: Mention) -> Mention:
        choices = _SELF_BODIES + (_SELF_ORDER_BODIES if previous.topic in _ABOUT_AN_ORDER else ())
        body = self._fill(self._rng.choice(choices), self._rng)
        text = f"@{self._brand} {body}"
        return Mention(customer, text, previous.visibility, "en", previous.topic, Thread.SELF)

    def _mood(self, customer: Customer, topic: Topic) -> str:
        if topic in (Topic.PRAISE, Topic.THANKS):
            return "happy"
        if topic is Topic.COMPLAINT:
            return "angry" if customer.temper > 0.2 or self._rng.random() < 0.4 else "upset"
        if topic is Topic.OUTAGE or customer.temper > 0.5:
            return "upset"
        return "calm"

    @staticmethod
    def _fill(template: str, rng: random.Random) -> str:
        def code(n: int, alphabet: str = string.ascii_uppercase + string.digits) -> str:
            return "".join(rng.choice(alphabet) for _ in range(n))

        order = f"{rng.randint(40000, 59999)}"
        values = {
            "order": rng.choice((f"#{order}", f"#{order}", order, f"no. {order}")),
            "days": str(rng.randint(2, 12)),
            "weekday": rng.choice(_WEEKDAYS),
            "product": rng.choice(_PRODUCTS),
            "carrier": rng.choice(_CARRIERS),
            "country": rng.choice(_COUNTRIES),
            "platform": rng.choice(_PLATFORMS),
            "version": f"3.{rng.randint(10, 19)}.{rng.randint(0, 4)}",
            "colour": rng.choice(_COLOURS),
            "city": rng.choice(_CITIES),
            "amount": f"{rng.choice(_CURRENCIES)}{rng.randint(9, 149)}.{rng.choice(('99', '00', '50'))}",
            "tracking": f"https://track.parcel.example/{code(10)}",
            "screenshot": f"https://files.social.example/media/{code(12, string.hexdigits[:16])}.png",
            "return_link": f"https://shop.example/returns/{order}?lang=en",
            "status_link": "https://status.shop.example",
        }
        return template.format_map(values)


# Answers to the Net Easy survey (1 = extremely easy … 7 = extremely difficult), with how often they come.
_SURVEY_ANSWERS: tuple[tuple[str, float], ...] = (
    ("1", 9.0),
    ("2", 9.0),
    ("1 thanks!", 5.0),
    ("2, thanks for sorting it", 5.0),
    ("2/7", 2.0),
    ("a 2", 2.0),
    ("3", 5.0),
    ("3 - took a while but ok", 3.0),
    ("4", 3.0),
    ("two", 2.0),
    ("very easy 🙏", 2.0),
    ("extremely easy", 1.0),
    ("1\ufe0f\u20e3", 1.5),
    ("2\ufe0f\u20e3", 1.5),
    ("5", 2.0),
    ("6 - took three tries to get through", 2.0),
    ("7. still no refund", 1.0),
    ("2 or 3", 1.5),
    ("10", 1.5),
    ("lol what", 1.0),
    ("🤷", 1.0),
    ("2. also, when will the refund show up?", 1.5),
)

_SURVEY_PROMPT_RE = re.compile(
    r"\beas(?:y|ily)\b.*\b1\b.*\b7\b|\b1\b.*\b7\b.*\beas(?:y|ily)\b", re.IGNORECASE | re.DOTALL
)


def is_survey_prompt(text: str) -> bool:
    """Whether a brand reply asks the Net Easy question (mentions ease and the 1–7 scale)."""
    return _SURVEY_PROMPT_RE.search(text) is not None


# Arrival modes: rate multiplier and (min, max) duration in seconds.
_RATE_FACTORS: Mapping[str, float] = {"normal": 1.0, "burst": 4.0, "quiet": 0.2}
_MODE_DURATIONS: Mapping[str, tuple[float, float]] = {
    "normal": (180.0, 600.0),
    "burst": (45.0, 150.0),
    "quiet": (150.0, 480.0),
}


class ArrivalProcess:
    """Seeded gaps between background mentions: a Poisson process whose rate swings between bursts and lulls.

    The long-run average is close to ``rate_per_minute``; short bursts run at four times the rate and quiet
    spells at a fifth of it, which is what a real support inbox looks like.
    """

    def __init__(self, *, seed: int, rate_per_minute: float) -> None:
        if rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be positive")
        self._rng = random.Random(f"{seed}:arrivals")
        self._rate = rate_per_minute / 60.0
        self._mode = "normal"
        self._mode_left = self._rng.uniform(*_MODE_DURATIONS["normal"])

    @property
    def mode(self) -> str:
        return self._mode

    def next_gap(self) -> float:
        """Seconds until the next mention."""
        gap = 0.0
        while True:
            wait = self._rng.expovariate(self._rate * _RATE_FACTORS[self._mode])
            if wait <= self._mode_left:
                self._mode_left -= wait
                return gap + wait
            # Memorylessness: jump to the mode switch and draw again at the new rate.
            gap += self._mode_left
            self._switch_mode()

    def _switch_mode(self) -> None:
        choices: Sequence[str] = ("burst", "quiet", "normal", "normal") if self._mode == "normal" else ("normal",)
        self._mode = self._rng.choice(choices)
        self._mode_left = self._rng.uniform(*_MODE_DURATIONS[self._mode])
