"""How long a text is as each platform counts it.

X does not count characters: it counts twitter-text's "weighted length". Under its v3
configuration Latin, Greek, Cyrillic and common punctuation weigh 1, everything else (CJK,
most symbols) weighs 2, every URL weighs 23 whatever its length, and an emoji sequence
(a flag, a skin tone, a family joined by zero-width joiners) weighs 2 as a whole. Text is
NFC-normalised first, so a decomposed "Á" counts once.

This follows twitter-text's own parseTweet step for step, because a post X would refuse
costs a billed call and a post we wrongly refuse never goes out. URL detection matches its
regular expressions, including addresses without a protocol ("uclan.ac.uk/safety" is a URL
when its TLD is real) and its refusal of hosts with a label over 63 characters. The
official conformance cases are in tests/fixtures/twitter_text/ and every counting case
passes (tests/channels/test_twitter_text.py).

Two deliberate differences from twitter-text's JavaScript, found by running both on 4,000
random texts:
- Emoji: twitter-text asks twemoji's fixed (Unicode 11-era) list; here a sequence is
  recognised by its Unicode structure (UTS #51: Extended_Pictographic, skin tones, tags,
  keycaps, flags, zero-width joiners), so newer emoji count 2 as well. The cost: two emoji
  glued by a joiner into no real emoji also count 2 where twitter-text counts the parts.
- Regular expressions here see code points where JavaScript's see UTF-16 halves, so in
  "😷-example.com" the "-example.com" is not taken for a link as JavaScript takes it.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

TWEET_LIMIT = 280
URL_WEIGHT = 23
LIMITS = {"twitter": TWEET_LIMIT, "facebook": 63_206, "in_the_know": 5_000}


@dataclass(frozen=True)
class WeightConfig:
    """One of twitter-text's configurations (config/v1.json ... v3.json), field for field."""

    version: int
    max_weighted_length: int
    scale: int
    default_weight: int
    transformed_url_length: int
    ranges: tuple[tuple[int, int, int], ...]  # (first code point, last, weight)
    emoji_parsing: bool = False

    def weight_of(self, char: str) -> int:
        """A code point's weight; astral ones always take the default, as in twitter-text."""
        point = ord(char)
        if point <= 0xFFFF:
            for first, last, weight in self.ranges:
                if first <= point <= last:
                    return weight
        return self.default_weight


_LIGHT = ((0, 4351, 100), (8192, 8205, 100), (8208, 8223, 100), (8242, 8247, 100))
V1 = WeightConfig(1, 140, 1, 1, 23, ())
V2 = WeightConfig(2, 280, 100, 200, 23, _LIGHT)
V3 = WeightConfig(3, 280, 100, 200, 23, _LIGHT, emoji_parsing=True)


@dataclass(frozen=True)
class TweetLength:
    """parseTweet's answer. Ranges are inclusive UTF-16 offsets into the text as given."""

    weighted_length: int
    valid: bool
    permillage: int
    display_range: tuple[int, int]
    valid_range: tuple[int, int]


def parse_tweet(text: str, config: WeightConfig = V3, *, count_urls: bool = True) -> TweetLength:
    """Weigh ``text`` as X does. ``valid_range`` ends at the last code unit that still fits.

    ``count_urls=False`` weighs URLs by their characters, as twitter-text's legacy
    ``isValidTweet`` did; the bot always counts them.
    """
    normalized = unicodedata.normalize("NFC", text)
    urls = dict(url_spans(normalized)) if count_urls else {}
    emoji = dict(_emoji_spans(normalized)) if config.emoji_parsing else {}
    limit = config.max_weighted_length * config.scale
    weight = 0
    valid = True
    last_fitting = 0
    offset = 0  # UTF-16 offset of position ``i``
    i = 0
    while i < len(normalized):
        if i in urls:
            end = urls[i]
            weight += config.transformed_url_length * config.scale
        elif i in emoji:
            end = emoji[i]
            weight += config.default_weight
        else:
            end = i + 1
            weight += config.weight_of(normalized[i])
        offset += _utf16_len(normalized[i:end])
        valid = valid and normalized[end - 1] not in _INVALID_CHARS
        if valid and weight <= limit:
            last_fitting = offset - 1
        i = end
    weighted = weight // config.scale
    length16 = _utf16_len(text)
    return TweetLength(
        weighted_length=weighted,
        valid=valid and 0 < weight <= limit,
        permillage=math.floor(weight / config.scale / config.max_weighted_length * 1000),
        display_range=(0, max(length16 - 1, 0)),
        valid_range=(0, last_fitting + length16 - _utf16_len(normalized)),
    )


def weighted_length(text: str) -> int:
    return parse_tweet(text).weighted_length


def length_for(channel: str, text: str) -> int:
    return weighted_length(text) if channel == "twitter" else len(text)


def fits(channel: str, text: str) -> bool:
    if channel == "twitter":
        return parse_tweet(text).valid
    return len(text) <= LIMITS.get(channel, TWEET_LIMIT)


def has_url(text: str) -> bool:
    """Whether X will see a link in ``text`` (a post with one is billed at a higher rate)."""
    return bool(url_spans(unicodedata.normalize("NFC", text)))


def _utf16_len(text: str) -> int:
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


# -- URLs: twitter-text's extractUrlsWithIndices ------------------------------------------
_INVALID_CHARS = "\ufffe\ufeff\uffff"
_DIRECTIONAL = "\u202a-\u202e\u061c\u200e\u200f\u2066\u2067\u2068\u2069"
_SPACES = "\x09-\x0d\x20\x85\xa0\u1680\u180e\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_PUNCT = r"!'#%&()*+,\\\-./:;<=>?@\[\]\^_{|}~$"
_LATIN_ACCENTS = (
    "\xc0-\xd6\xd8-\xf6\xf8-\xff\u0100-\u024f\u0253\u0254\u0256\u0257\u0259\u025b\u0263"
    "\u0268\u026f\u0272\u0289\u028b\u02bb\u0300-\u036f\u1e00-\u1eff"
)
_CYRILLIC = "\u0400-\u04ff"
MAX_URL_LENGTH = 4096
MAX_TCO_SLUG_LENGTH = 40
MAX_LABEL_LENGTH = 63


def _alternation(words: list[str]) -> str:
    return "|".join(re.escape(word) for word in words)


def _build_url_patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    domain_char = f"[^{_PUNCT}{_SPACES}{_INVALID_CHARS}{_DIRECTIONAL}]"
    subdomain = f"(?:(?:{domain_char}(?:[_-]|{domain_char})*)?{domain_char}\\.)"
    domain_name = f"(?:(?:{domain_char}(?:-|{domain_char})*)?{domain_char}\\.)"
    tld_end = "(?=[^0-9a-zA-Z@+-]|$)"
    tlds = (
        f"(?:(?:{_alternation(_GENERIC_TLDS)}){tld_end})"
        f"|(?:(?:{_alternation(_COUNTRY_TLDS)}){tld_end})"
        "|(?:xn--[\\-0-9a-z]+)"
    )
    domain = f"(?:{subdomain}*{domain_name}(?:{tlds}))"
    path_char = f"[a-z{_CYRILLIC}0-9!*';:=+,.$/%#\\[\\]\\-\u2013_~@|&{_LATIN_ACCENTS}]"
    parens = f"\\((?:{path_char}+|(?:{path_char}*\\({path_char}+\\){path_char}*))\\)"
    path_end = f"[+\\-a-z{_CYRILLIC}0-9=_#/{_LATIN_ACCENTS}]|(?:{parens})"
    path = f"(?:(?:{path_char}*(?:{parens}{path_char}*)*(?:{path_end}))|(?:@{path_char}+/))"
    query = "[a-z0-9!?*'@();:&=+$/%#\\[\\]\\-_.,~|]"
    query_end = "[a-z0-9\\-_&=#/]"
    preceding = f"(?:[^A-Za-z0-9@＠$#＃{_INVALID_CHARS}]|[{_DIRECTIONAL}]|^)"
    url = re.compile(
        f"(?P<before>{preceding})"
        f"(?P<url>(?P<protocol>https?://)?(?P<domain>{domain})(?::[0-9]+)?"
        f"(?P<path>/{path}*)?(?:\\?{query}*{query_end})?)",
        re.IGNORECASE,
    )
    ascii_domain = re.compile(f"(?:[\\-a-z0-9{_LATIN_ACCENTS}]+\\.)+(?:{tlds})", re.IGNORECASE)
    tco = re.compile(f"https?://t\\.co/([a-z0-9]+)(?:\\?{query}*{query_end})?", re.IGNORECASE)
    return url, ascii_domain, tco


def url_spans(text: str) -> list[tuple[int, int]]:
    """Where X sees URLs in (already NFC) ``text``: (start, end) code point offsets."""
    if "." not in text:
        return []
    spans: list[tuple[int, int]] = []
    for match in _URL.finditer(text):
        url, protocol, domain = match["url"], match["protocol"], match["domain"]
        start, end = match.start("url"), match.end("url")
        if not _host_is_valid(url, protocol or "https://", domain):
            continue
        if protocol:
            tco = _TCO.match(url)
            if tco:  # a t.co link ends where its slug does
                if len(tco[1]) > MAX_TCO_SLUG_LENGTH:
                    continue
                end = start + tco.end()
            spans.append((start, end))
            continue
        if re.search(r"[-_./]$", match["before"]):
            continue  # "foo.bar.com" inside a longer token is not a link
        found = [(start + m.start(), start + m.end()) for m in _ASCII_DOMAIN.finditer(domain)]
        if found and match["path"]:
            # twitter-text keeps the path on the last ASCII domain and skips that many
            # characters, so "a.co日本.com/x" is the link "a.co" plus "/x" long.
            last = found[-1][0]
            found[-1] = (last, min(end, last + found[-1][1] - last + len(url) - len(domain)))
        spans.extend(found)
    return spans


def _host_is_valid(url: str, protocol: str, domain: str) -> bool:
    """twitter-text's isValidUrl: every host label 1-63 characters once punycoded, and the
    URL with its protocol at most 4096 UTF-16 code units."""
    if domain[:4] == "xn--" and not _ASCII_DOMAIN.search(domain):
        return False
    for label in domain.split("."):
        ascii_label = label if label.isascii() else "xn--" + label.encode("punycode").decode()
        if not 1 <= len(ascii_label) <= MAX_LABEL_LENGTH:
            return False
    return len(protocol) + _utf16_len(url) <= MAX_URL_LENGTH


# -- emoji ----------------------------------------------------------------------------------
def _build_emoji_pattern() -> re.Pattern[str]:
    ranges = []
    for item in _PICTOGRAPHIC:
        first, _, last = item.partition("-")
        ranges.append(f"{chr(int(first, 16))}-{chr(int(last or first, 16))}")
    pictographic = "[" + "".join(ranges) + "]"
    element = (
        f"{pictographic}(?:\ufe0f|[\U0001f3fb-\U0001f3ff])?(?:[\U000e0020-\U000e007e]+\U000e007f)?"
    )
    return re.compile(
        "[\U0001f1e6-\U0001f1ff]{2}"  # a flag: two regional indicators
        "|[0-9#*]\ufe0f?\u20e3"  # a keycap
        f"|{element}(?:\u200d{element})*"
    )


def _emoji_spans(text: str) -> list[tuple[int, int]]:
    """Emoji sequences of two or more code points; a lone one is weighed like any character."""
    return [(m.start(), m.end()) for m in _EMOJI.finditer(text) if m.end() - m.start() > 1]


# twitter-text 3.1.0's generic TLDs (regexp/validGTLD.js), in its order: alternation order
# matters, as in its regular expression.
_GENERIC_TLDS = (
    "삼성 닷컴 닷넷 香格里拉 餐厅 食品 飞利浦 電訊盈科 集团 通販 购物 谷歌 诺基亚 联通 网络 "
    "网站 网店 网址 组织机构 移动 珠宝 点看 游戏 淡马锡 机构 書籍 时尚 新闻 政府 政务 招聘 "
    "手表 手机 我爱你 慈善 微博 广东 工行 家電 娱乐 天主教 大拿 大众汽车 在线 嘉里大酒店 嘉里 "
    "商标 商店 商城 公益 公司 八卦 健康 信息 佛山 企业 中文网 中信 世界 ポイント ファッション "
    "セール ストア コム グーグル クラウド みんな คอม संगठन नेट कॉम همراه موقع موبايلي كوم "
    "كاثوليك عرب شبكة بيتك بازار العليان ارامكو اتصالات ابوظبي קום сайт рус орг онлайн москва "
    "ком католик дети zuerich zone zippo zip zero zara zappos yun youtube you yokohama yoga "
    "yodobashi yandex yamaxun yahoo yachts xyz xxx xperia xin xihuan xfinity xerox xbox wtf "
    "wtc wow world works work woodside wolterskluwer wme winners wine windows win williamhill "
    "wiki wien whoswho weir weibo wedding wed website weber webcam weatherchannel weather "
    "watches watch warman wanggou wang walter walmart wales vuelos voyage voto voting vote "
    "volvo volkswagen vodka vlaanderen vivo viva vistaprint vista vision visa virgin vip vin "
    "villas viking vig video viajes vet versicherung vermögensberatung vermögensberater "
    "verisign ventures vegas vanguard vana vacations ups uol uno university unicom uconnect "
    "ubs ubank tvs tushu tunes tui tube trv trust travelersinsurance travelers travelchannel "
    "travel training trading trade toys toyota town tours total toshiba toray top tools tokyo "
    "today tmall tkmaxx tjx tjmaxx tirol tires tips tiffany tienda tickets tiaa theatre "
    "theater thd teva tennis temasek telefonica telecity tel technology tech team tdk tci "
    "taxi tax tattoo tatar tatamotors target taobao talk taipei tab systems symantec sydney "
    "swiss swiftcover swatch suzuki surgery surf support supply supplies sucks style study "
    "studio stream store storage stockholm stcgroup stc statoil statefarm statebank starhub "
    "star staples stada srt srl spreadbetting spot sport spiegel space soy sony song "
    "solutions solar sohu software softbank social soccer sncf smile smart sling skype sky "
    "skin ski site singles sina silk shriram showtime show shouji shopping shop shoes shiksha "
    "shia shell shaw sharp shangrila sfr sexy sex sew seven ses services sener select seek "
    "security secure seat search scot scor scjohnson science schwarz schule school "
    "scholarships schmidt schaeffler scb sca sbs sbi saxo save sas sarl sapo sap sanofi "
    "sandvikcoromant sandvik samsung samsclub salon sale sakura safety safe saarland ryukyu "
    "rwe run ruhr rugby rsvp room rogers rodeo rocks rocher rmit rip rio ril rightathome "
    "ricoh richardli rich rexroth reviews review restaurant rest republican report repair "
    "rentals rent ren reliance reit reisen reise rehab redumbrella redstone red recipes "
    "realty realtor realestate read raid radio racing qvc quest quebec qpon pwc pub "
    "prudential pru protection property properties promo progressive prof productions prod "
    "pro prime press praxi pramerica post porn politie poker pohl pnc plus plumbing "
    "playstation play place pizza pioneer pink ping pin pid pictures pictet pics piaget "
    "physio photos photography photo phone philips phd pharmacy pfizer pet pccw pay passagens "
    "party parts partners pars paris panerai panasonic pamperedchef page ovh ott otsuka osaka "
    "origins orientexpress organic org orange oracle open ooo onyourside online onl ong one "
    "omega ollo oldnavy olayangroup olayan okinawa office off observer obi nyc ntt nrw nra "
    "nowtv nowruz now norton northwesternmutual nokia nissay nissan ninja nikon nike nico nhk "
    "ngo nfl nexus nextdirect next news newholland new neustar network netflix netbank net "
    "nec nba navy natura nationwide name nagoya nadex nab mutuelle mutual museum mtr mtpc mtn "
    "msd movistar movie mov motorcycles moto moscow mortgage mormon mopar montblanc monster "
    "money monash mom moi moe moda mobily mobile mobi mma mls mlb mitsubishi mit mint mini "
    "mil microsoft miami metlife merckmsd meo menu men memorial meme melbourne meet media med "
    "mckinsey mcdonalds mcd mba mattel maserati marshalls marriott markets marketing market "
    "map mango management man makeup maison maif madrid macys luxury luxe lupin lundbeck ltda "
    "ltd lplfinancial lpl love lotto lotte london lol loft locus locker loans loan llp llc "
    "lixil living live lipsy link linde lincoln limo limited lilly like lighting lifestyle "
    "lifeinsurance life lidl liaison lgbt lexus lego legal lefrak leclerc lease lds lawyer "
    "law latrobe latino lat lasalle lanxess landrover land lancome lancia lancaster lamer "
    "lamborghini ladbrokes lacaixa kyoto kuokgroup kred krd kpn kpmg kosher komatsu koeln "
    "kiwi kitchen kindle kinder kim kia kfh kerryproperties kerrylogistics kerryhotels kddi "
    "kaufen juniper juegos jprs jpmorgan joy jot joburg jobs jnj jmp jll jlc jio jewelry "
    "jetzt jeep jcp jcb java jaguar iwc iveco itv itau istanbul ist ismaili iselect irish "
    "ipiranga investments intuit international intel int insure insurance institute ink ing "
    "info infiniti industries inc immobilien immo imdb imamat ikano iinet ifm ieee icu ice "
    "icbc ibm hyundai hyatt hughes htc hsbc how house hotmail hotels hoteles hot hosting host "
    "hospital horse honeywell honda homesense homes homegoods homedepot holiday holdings "
    "hockey hkt hiv hitachi hisamitsu hiphop hgtv hermes here helsinki help healthcare health "
    "hdfcbank hdfc hbo haus hangout hamburg hair guru guitars guide guge gucci guardian group "
    "grocery gripe green gratis graphics grainger gov got gop google goog goodyear goodhands "
    "goo golf goldpoint gold godaddy gmx gmo gmbh gmail globo global gle glass glade giving "
    "gives gifts gift ggee george genting gent gea gdn gbiz gay garden gap games game gallup "
    "gallo gallery gal fyi futbol furniture fund fun fujixerox fujitsu ftr frontier frontdoor "
    "frogans frl fresenius free fox foundation forum forsale forex ford football foodnetwork "
    "food foo fly flsmidth flowers florist flir flights flickr fitness fit fishing fish "
    "firmdale firestone fire financial finance final film fido fidelity fiat ferrero ferrari "
    "feedback fedex fast fashion farmers farm fans fan family faith fairwinds fail fage "
    "extraspace express exposed expert exchange everbank events eus eurovision etisalat "
    "esurance estate esq erni ericsson equipment epson epost enterprises engineering engineer "
    "energy emerck email education edu edeka eco eat earth dvr dvag durban dupont duns dunlop "
    "duck dubai dtv drive download dot doosan domains doha dog dodge doctor docs dnp diy dish "
    "discover discount directory direct digital diet diamonds dhl dev design desi dentist "
    "dental democrat delta deloitte dell delivery degree deals dealer deal dds dclk day "
    "datsun dating date data dance dad dabur cyou cymru cuisinella csc cruises cruise crs "
    "crown cricket creditunion creditcard credit cpa courses coupons coupon country corsica "
    "coop cool cookingchannel cooking contractors contact consulting construction condos "
    "comsec computer compare company community commbank comcast com cologne college coffee "
    "codes coach clubmed club cloud clothing clinique clinic click cleaning claims cityeats "
    "city citic citi citadel cisco circle cipriani church chrysler chrome christmas chloe "
    "chintai cheap chat chase charity channel chanel cfd cfa cern ceo center ceb cbs cbre cbn "
    "cba catholic catering cat casino cash caseih case casa cartier cars careers career care "
    "cards caravan car capitalone capital capetown canon cancerresearch camp camera cam "
    "calvinklein call cal cafe cab bzh buzz buy business builders build bugatti budapest "
    "brussels brother broker broadway bridgestone bradesco box boutique bot boston bostik "
    "bosch boots booking book boo bond bom bofa boehringer boats bnpparibas bnl bmw bms blue "
    "bloomberg blog blockbuster blanco blackfriday black biz bio bingo bing bike bid bible "
    "bharti bet bestbuy best berlin bentley beer beauty beats bcn bcg bbva bbt bbc bayern "
    "bauhaus basketball baseball bargains barefoot barclays barclaycard barcelona bar bank "
    "band bananarepublic banamex baidu baby azure axa aws avianca autos auto author auspost "
    "audio audible audi auction attorney athleta associates asia asda arte art arpa army "
    "archi aramco arab aquarelle apple app apartments aol anz anquan android analytics "
    "amsterdam amica amfam amex americanfamily americanexpress alstom alsace ally allstate "
    "allfinanz alipay alibaba alfaromeo akdn airtel airforce airbus aigo aig agency agakhan "
    "africa afl afamilycompany aetna aero aeg adult ads adac actor active aco accountants "
    "accountant accenture academy abudhabi abogado able abc abbvie abbott abb abarth aarp aaa "
    "onion "
).split()

# twitter-text 3.1.0's country-code TLDs (regexp/validCCTLD.js), in its order.
_COUNTRY_TLDS = (
    "한국 香港 澳門 新加坡 台灣 台湾 中國 中国 გე ລາວ ไทย ලංකා ഭാരതം ಭಾರತ భారత్ சிங்கப்பூர் "
    "இலங்கை இந்தியா ଭାରତ ભારત ਭਾਰਤ ভাৰত ভারত বাংলা भारोत भारतम् भारत ڀارت پاکستان موريتانيا "
    "مليسيا مصر قطر فلسطين عمان عراق سورية سودان تونس بھارت بارت ایران امارات المغرب السعودية "
    "الجزائر البحرين الاردن հայ қаз укр срб рф мон мкд ею бел бг ευ ελ zw zm za yt ye ws wf "
    "vu vn vi vg ve vc va uz uy us um uk ug ua tz tw tv tt tr tp to tn tm tl tk tj th tg tf "
    "td tc sz sy sx sv su st ss sr so sn sm sl sk sj si sh sg se sd sc sb sa rw ru rs ro re "
    "qa py pw pt ps pr pn pm pl pk ph pg pf pe pa om nz nu nr np no nl ni ng nf ne nc na mz "
    "my mx mw mv mu mt ms mr mq mp mo mn mm ml mk mh mg mf me md mc ma ly lv lu lt ls lr lk "
    "li lc lb la kz ky kw kr kp kn km ki kh kg ke jp jo jm je it is ir iq io in im il ie id "
    "hu ht hr hn hm hk gy gw gu gt gs gr gq gp gn gm gl gi gh gg gf ge gd gb ga fr fo fm fk "
    "fj fi eu et es er eh eg ee ec dz do dm dk dj de cz cy cx cw cv cu cr co cn cm cl ck ci "
    "ch cg cf cd cc ca bz by bw bv bt bs br bq bo bn bm bl bj bi bh bg bf be bd bb ba az ax "
    "aw au at as ar aq ao an am al ai ag af ae ad ac "
).split()

# Unicode's Extended_Pictographic code points (emoji-data.txt, Unicode 17) as hex ranges.
_PICTOGRAPHIC = (
    "00A9 00AE 203C 2049 2122 2139 2194-2199 21A9-21AA 231A-231B 2328 23CF 23E9-23F3 "
    "23F8-23FA 24C2 25AA-25AB 25B6 25C0 25FB-25FE 2600-2604 260E 2611 2614-2615 2618 261D "
    "2620 2622-2623 2626 262A 262E-262F 2638-263A 2640 2642 2648-2653 265F-2660 2663 "
    "2665-2666 2668 267B 267E-267F 2692-2697 2699 269B-269C 26A0-26A1 26A7 26AA-26AB "
    "26B0-26B1 26BD-26BE 26C4-26C5 26C8 26CE-26CF 26D1 26D3-26D4 26E9-26EA 26F0-26F5 "
    "26F7-26FA 26FD 2702 2705 2708-270D 270F 2712 2714 2716 271D 2721 2728 2733-2734 2744 "
    "2747 274C 274E 2753-2755 2757 2763-2764 2795-2797 27A1 27B0 27BF 2934-2935 2B05-2B07 "
    "2B1B-2B1C 2B50 2B55 3030 303D 3297 3299 1F004 1F02C-1F02F 1F094-1F09F 1F0AF-1F0B0 1F0C0 "
    "1F0CF-1F0D0 1F0F6-1F0FF 1F170-1F171 1F17E-1F17F 1F18E 1F191-1F19A 1F1AE-1F1E5 "
    "1F201-1F20F 1F21A 1F22F 1F232-1F23A 1F23C-1F23F 1F249-1F25F 1F266-1F321 1F324-1F393 "
    "1F396-1F397 1F399-1F39B 1F39E-1F3F0 1F3F3-1F3F5 1F3F7-1F3FA 1F400-1F4FD 1F4FF-1F53D "
    "1F549-1F54E 1F550-1F567 1F56F-1F570 1F573-1F57A 1F587 1F58A-1F58D 1F590 1F595-1F596 "
    "1F5A4-1F5A5 1F5A8 1F5B1-1F5B2 1F5BC 1F5C2-1F5C4 1F5D1-1F5D3 1F5DC-1F5DE 1F5E1 1F5E3 "
    "1F5E8 1F5EF 1F5F3 1F5FA-1F64F 1F680-1F6C5 1F6CB-1F6D2 1F6D5-1F6E5 1F6E9 1F6EB-1F6F0 "
    "1F6F3-1F6FF 1F7DA-1F7FF 1F80C-1F80F 1F848-1F84F 1F85A-1F85F 1F888-1F88F 1F8AE-1F8AF "
    "1F8BC-1F8BF 1F8C2-1F8CF 1F8D9-1F8FF 1F90C-1F93A 1F93C-1F945 1F947-1F9FF 1FA58-1FA5F "
    "1FA6E-1FAFF 1FC00-1FFFD "
).split()

_URL, _ASCII_DOMAIN, _TCO = _build_url_patterns()
_EMOJI = _build_emoji_pattern()
