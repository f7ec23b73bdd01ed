"""Words that carry no wish of their own in any catalog: function words, chat filler, and the
nouns people use for "an item" whatever the shop sells ("film", "movie", "sticker", "picture").
They are neither matched against values nor kept in the soft text query ("a film with tom
hanks" must not look for items whose text says "film")."""
from __future__ import annotations

FUNCTION_WORDS = set("""a an the this that these those it its i i'm im i'd id i'll me my mine we us our you your
he she they them their one ones of in on at to for with and or but so as is are was were be been being am do does all
did doing have has had having want wants wanted need needs like likes would could should can will shall may might
must please some something anything more less very really just also maybe perhaps thing things what which who whom
how any ok okay yes yeah yep hmm hm well now again same similar than then there here about around into onto from by
up down out off only even still quite rather pretty kinda sorta bit lot lots much many let let's lets
i've ive you're youre it's its that's thats what's whats there's got get gets getting go going show shows showing
give find finding see seen looking look looks search searching tell try trying think hey hi hello thanks thank
""".split())

# What people call an item, in any shop. Kept general on purpose: a catalog's own words
# (its values, its titles) are never here.
ITEM_NOUNS = set("""item items product products thing things stuff one ones option options choice choices
result results recommendation recommendations suggestion suggestions pick picks
picture pictures image images pic pics photo photos icon icons sticker stickers emoji emojis clipart graphic graphics
film films movie movies flick flicks title titles
kind kinds sort sorts type types style styles version versions variant variants""".split())

STOPWORDS = FUNCTION_WORDS | ITEM_NOUNS
