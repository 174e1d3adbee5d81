"""Grounding rules and the lexical toolkit: pure functions, no model."""
from dataclasses import replace

import pytest

from qa_bot import cite, constraints, ground
from qa_bot.structure import Structure
from qa_bot.types import Sentence

P1 = "Alibaba went public in New York back in 2014, marking the largest IPO at the time."
P2 = ("Alibaba’s Dingtalk, an enterprise chat app, surpassed 600 million users as of Q3 2022, with 15 million "
      "paid daily active users and 23 million enterprise users.")
P3 = "The cloud business generated $2.7 billion in revenue during the first quarter, making up 9% of Alibaba’s total revenues."
P4 = "Not long after Hong Kong relaxed rules in 2019, Alibaba sought a secondary listing in the city."
DOC = " ".join([P1, P2, P3, "Rules changed.", P4])


def placed(s: Sentence, doc: str) -> Sentence:
    """s with its section and its document's lead sentence, as the retriever shows it (from doc's Structure)."""
    structure = Structure.of(doc)
    return replace(s, section=structure.section(s.start), lead=structure.lead or (0, 0))


def sentences(label=""):
    out = []
    for p in [P1, P2, P3, P4]:
        start = DOC.index(p)
        prev = DOC.rfind(". ", 0, start - 1) if start else -1
        out.append(placed(Sentence("a.txt", start, start + len(p), p, prev + 2 if prev >= 0 else start, label, 1.0, 0.5), DOC))
    return out


def run(answer, question, n=0, label=""):
    found, why = ground.ground(ground.ReaderDraft(answer, n), question, sentences(label), lambda s: DOC)
    return found, why


def test_markers_parse_lists_and_repeats():
    assert cite.markers("a [2] b [1, 3] c [2]") == [2, 1, 3]
    assert cite.strip_markers("Paris [1]. Rome [2, 3].") == "Paris. Rome."


@pytest.mark.parametrize("raw,answer,n", [
    ('{"answer": "9%", "sentence": 3}', "9%", 3),
    ('Sure: {"answer": "Hong Kong.", "sentence": "x"}', "Hong Kong", 0),
    ("9% [3]", "9%", 3),
    ("The article does not say.", "", 0),
    ('{"answer": 2014, "sentence": 1}', "2014", 1),
    ('{"answer": "In 2014.", "sentence": 1}', "In 2014", 1),
    ('{"answer": "Alibaba Group Holding Ltd.", "sentence": 1}', "Alibaba Group Holding Ltd", 1),
    ('{"answer": "the U.S.", "sentence": 1}', "the U.S.", 1),
    ("", "", 0),
    ('{"answer": "Rising tensions between the U.S. and China.", "sentence": 2}', "Rising tensions between the U.S. and China", 2),
])
def test_reader_replies_are_parsed_leniently(raw, answer, n):
    assert ground.parse_reader(raw) == ground.ReaderDraft(answer, n)


@pytest.mark.parametrize("raw,answer", [
    ('{"answer": "9%', "9%"),  # compact: cut at '", "'
    ('{\n  "answer": "Hong Kong.', "Hong Kong"),  # one key per line: cut at '",\n'
    ('{"answer": "', ""),  # the reader found nothing
    ('{"answer": "the \\"AWS\\" of China', 'the "AWS" of China'),  # escaped quotes are the answer's own
    ('{"answer": "9%", "', "9%"),  # a server that kept the stop sequence
])
def test_a_reply_cut_at_the_stop_sequence_is_its_answer(raw, answer):
    assert ground.parse_reader(raw) == ground.ReaderDraft(answer, 0)
    # cut at max_tokens instead, the same text may end inside the answer: no answer
    assert ground.parse_reader(raw, cut_at_stop=False) == ground.ReaderDraft("", 0)


def test_the_stop_sequences_cannot_match_inside_an_answer():
    """An answer holding quotes and commas is written escaped, so no stop sequence occurs before its end."""
    import json

    from qa_bot import prompts

    for answer in ['"AWS", "Slack"', 'a",\n"b', 'x", y']:
        for reply in (json.dumps({"answer": answer, "sentence": 1}), json.dumps({"answer": answer, "sentence": 1}, indent=2)):
            ends = [reply.find(s) for s in prompts.READER_STOP if s in reply]
            assert min(ends) == reply.index(json.dumps(answer)) + len(json.dumps(answer)) - 1, (reply, ends)
            cut = reply[: min(ends)]
            assert ground.parse_reader(cut).answer == ground.clean_answer(answer)


def test_answer_is_cited_to_the_exact_sentence_even_when_the_reader_names_another():
    found, _ = run("9%", "Roughly what portion of the group's sales came from cloud in Q1?", n=1)
    assert found and found.text == P3 and DOC[found.start:found.end] == P3


def test_answer_from_the_sentence_before_cites_both():
    found, _ = run("Hong Kong", "In which city did Alibaba seek a secondary listing?", n=4)
    assert found and found.text == P4  # "Hong Kong" is in P4 itself here
    found, _ = run("Rules changed", "What happened before the listing in the city?", n=4)
    assert found and found.text.startswith("Rules changed.") and found.text.endswith(P4)


def test_invented_answers_are_refused():
    assert run("1999", "When did Alibaba go public?")[0] is None
    assert run("Jack Ma", "Who took Alibaba public?")[0] is None
    assert run("23 million", "How many users?")[0] is not None
    assert run("23", "How many users?")[0] is None, "23 without its scale is not 23 million"


@pytest.mark.parametrize("question,missing", [
    ("How much revenue did the cloud business make in the second quarter?", "2"),
    ("How many users did Dingtalk have in Q3 2023?", "2023"),
    ("When did Tencent go public in New York?", "tencent"),
])
def test_near_misses_on_the_question_s_own_numbers_and_names_are_refused(question, missing):
    answers = {"2": "$2.7 billion", "2023": "600 million", "tencent": "2014"}
    found, why = run(answers[missing], question)
    assert found is None and missing in why


def test_constraints_can_be_met_by_the_document_title_or_heading():
    q = "In the 2015 annual report, how many users did Dingtalk have?"
    assert run("600 million", q)[0] is None
    assert run("600 million", q, label="Annual report 2015")[0] is not None


def test_a_story_s_lead_sentence_states_the_numbers_of_the_sentences_near_it():
    lead = "An earthquake measuring 4.1 has shaken the wheatbelt overnight."
    rest = " The epicentre was in Burakin, north-east of Perth. A spokesman says it occurred at about 12:30am."
    q = "At what time did the magnitude 4.1 tremor near Burakin strike?"
    for gap, found in [("", True), (" Filler sentence here." * 80, False)]:  # within SECTION_SPAN of the lead, or not
        doc = lead + gap + rest
        start = doc.index("A spokesman")
        s = placed(Sentence("q.txt", start, len(doc), doc[start:], doc.index("The epicentre"), "", 1.0, 0.5), doc)
        assert (constraints.constraints_missing_around(q, s, doc) == []) is found, gap[:20]
        assert (ground.ground(ground.ReaderDraft("12:30am", 1), q, [s], lambda _: doc)[0] is not None) is found
    doc = lead + rest  # a sentence under a heading reads its heading, not the lead
    s = placed(Sentence("q.txt", doc.index("A spokesman"), len(doc), "", doc.index("The epicentre"), "", 1.0, 0.5, ((0, 10),)), doc)
    assert constraints.constraints_missing_around(q, s, doc) == ["4.1"]
    # The cost, accepted on the eval sets (no tuning-half answer changed but the eighth set's e06): a lead's number
    # about another fact counts too. P1's "2014" is the IPO's year, and meets "the 2014 annual report".
    assert run("600 million", "In the 2014 annual report, how many users did Dingtalk have?")[0] is not None


def test_paraphrased_periods_and_abbreviations_do_not_block():
    assert run("$2.7 billion", "What were cloud sales in Q1?")[0] is not None  # Q1 = first quarter
    assert run("2014", "When was the IPO in New York?")[0] is not None  # IPO is an abbreviation, not a name
    assert constraints.missing_constraints("bash 5.2 added what?", "bash-5.2.15 released") == []
    assert constraints.missing_constraints("bash 5.3 added what?", "bash-5.2.15 released") == ["5.3"]


def test_answers_of_the_wrong_kind_or_restating_the_question_are_refused():
    assert run("New York", "In what year did Alibaba go public in New York?")[1]
    assert run("Alibaba went public", "When did Alibaba go public?")[0] is None
    assert run("the article discusses IPOs", "What is this about?")[0] is None


def test_numbers_and_number_words():
    assert cite.numbers("six companies, $2,000 and 2.50, third place, 3rd") >= {"6", "2000", "2.50", "3"}
    assert cite.numbers("gzip 1.10, OpenSSL 3.0.0") == {"1.10", "3.0.0"}, "releases are not decimals"
    # a factor in words is a number: "How much faster?" is answered by "threefold" (and "manifold" is none)
    assert cite.numbers("Threefold decryption speedup, a tenfold rise, a manifold") == {"3", "10"}
    assert ground.acceptable("threefold", "How much faster is decrypting big files with gpg 2.2.35?")


def test_ordinals_constrain_periods_only():
    assert constraints.question_numbers("How much revenue in the second quarter?") == {"2"}
    assert constraints.question_numbers("Where did Alibaba seek a second listing?") == set()
    assert constraints.question_numbers("Which release first added TLSv1.3?") == {"1.3"}
    assert constraints.question_numbers("What were sales in Q1 2023 for the six units?") == {"1", "2023"}
    assert constraints.question_numbers("What does diff return when two binary files differ?") == set()
    assert constraints.question_numbers("What happened two weeks later?") == {"2"}
    assert cite.numbers_bound("split into 6 independent companies", "split itself into six independent companies")


def test_coverage_weights_rare_terms():
    idf = cite.idf_weights([P1, P2, P3, "Alibaba Alibaba"])
    assert cite.coverage("What was Alibaba's net profit?", P3, idf, 3.0) < 0.5
    assert cite.coverage("When did Alibaba go public in New York?", P1, idf, 3.0) == 1.0


def test_number_scale_must_match():
    assert not cite.numbers_bound("Dingtalk has 23 enterprise users.", P2)
    assert cite.numbers_bound("Dingtalk has 23 million enterprise users.", P2)


def test_stop_words_are_removed_before_stemming():
    assert cite.content_words("How many employees does it have? This was so.") == cite.content_words("employees")
    assert len(cite.content_words("employees")) == 1


def test_numbers_inside_names_are_not_quantities():
    assert cite.quantities("It trails GPT-3, ranked in Q3, is one of three with 3D printers.") == {"3"}
    assert cite.quantities("It has 600 million users, the third largest, 9% and $2.7 billion.") >= {"600", "9", "2.7", "3"}
    q = "How many parameters does the model have?"
    assert not cite.answers_kind("The model is nowhere near GPT-3.", q)


@pytest.mark.parametrize("answer, shown", [
    ("in Hong Kong", "In Hong Kong"), ("about 9%", "About 9%"), ("Hong Kong", "Hong Kong"),
    ("base-passwd@packages.debian.org", "base-passwd@packages.debian.org"), ("libc-bin", "libc-bin"),
    ("sbc.y", "sbc.y"), ("zstd", "zstd"), ("pg_lsclusters", "pg_lsclusters"), ("$2.7 billion", "$2.7 billion"),
])
def test_an_answer_is_capitalised_only_when_it_opens_with_a_plain_word(answer, shown):
    assert cite.sentence_case(answer) == shown


def test_a_who_question_takes_a_name_or_an_address():
    q = "Who do I have to email before using a static ID?"
    assert cite.answers_kind("base-passwd@packages.debian.org", q)  # an address is seldom capitalised
    assert cite.answers_kind("Marc Haber", q)
    assert not cite.answers_kind("before the upload", q)
    assert not cite.answers_kind("packages.debian.org", q)  # a host is not an address


def test_the_check_is_needed_only_when_a_key_term_is_missing_from_the_evidence():
    found, _ = run("15 million", "How many paid daily active users does Dingtalk have?")
    assert found and not ground.needs_check("How many paid daily active users does Dingtalk have?", found)
    assert ground.needs_check("How many employees does Dingtalk have?", found)


def test_an_answer_from_a_close_heading_cites_heading_through_sentence():
    news = "Release notes\n\n* Changes in release 4.6 (2018-12-19)\n\n  New option, --debug: print the script.\n"
    start = news.index("New option")
    heading = news.index("Changes in release 4.6")
    s = placed(Sentence("n.txt", start, len(news) - 1, news[start:-1], start, "n — Changes in release 4.6 (2018-12-19)",
                        1.0, 0.5, ((heading, news.index("\n", heading)),)), news)
    found, _ = ground.ground(ground.ReaderDraft("4.6", 1), "Which release added the --debug option?", [s], lambda _: news)
    assert found and found.start == heading and found.text == news[heading:len(news) - 1] and not found.headings
    far = news.replace("\n\n  New", "\n\n" + "  x.\n" * 600 + "\n  New")
    start = far.index("New option")
    s = placed(Sentence("n.txt", start, len(far) - 1, far[start:-1], start, "n — Changes in release 4.6", 1.0, 0.5,
                        ((heading, far.index("\n", heading)),)), far)
    found, _ = ground.ground(ground.ReaderDraft("4.6", 1), "Which release added the --debug option?", [s], lambda _: far)
    assert found and found.text.startswith("New option") and found.headings[0][2].startswith("Changes in release 4.6")


def test_a_label_copied_into_the_answer_is_dropped():
    found, _ = run("Daniel Zhang (Alibaba article)", "Who took Alibaba public?")
    assert found is None
    found, _ = run("New York (Alibaba article)", "Where did Alibaba go public?")
    assert found and found.answer == "New York"


def test_the_document_title_can_answer_which_document_questions():
    q = "Which company's IPO was the largest at the time?"
    assert run("Tencent", q, label="Tencent news")[0] is not None
    found, _ = run("Alibaba", q, label="Tencent news")
    assert found and found.text == P1


def test_symbol_and_factor_answers_are_answers():
    assert cite.quantities("about 10x faster, 128K bytes") >= {"10", "128"}
    assert cite.adds_information("%Q", "What new format specifier does printf get?")
    assert ground.supports_answer("%Q", "The printf builtin has a new %Q format specifier.")
    assert not ground.supports_answer("%Z", "The printf builtin has a new %Q format specifier.")


def test_a_name_may_be_two_sentences_back_but_a_number_may_not():
    doc = ("Tongyi Qianwen is Alibaba's flagship large language model. It is applied to many products. "
           "In fact, the integration has started, first with a copilot for Dingtalk. Sales rose in 2021.")
    start = doc.index("In fact")
    s = [placed(Sentence("a.txt", start, doc.index(" Sales"), doc[start:doc.index(" Sales")], doc.index("It is"), "", 1.0, 0.5), doc)]
    found, why = ground.ground(ground.ReaderDraft("Dingtalk", 1), "Which product did Tongyi Qianwen reach first?", s, lambda _: doc)
    assert found is not None and found.text.startswith("In fact"), why
    # a year (or version) must be in the sentence or the one before it: two back is another fact's
    doc2 = doc.replace("many products", "many products since 2019")
    s2 = [placed(Sentence("a.txt", start + 11, doc2.index(" Sales"), doc2[start + 11:doc2.index(" Sales")], doc2.index("It is"), "", 1.0, 0.5),
                 doc2)]
    assert ground.ground(ground.ReaderDraft("Dingtalk", 1), "Which product did Tongyi Qianwen reach first in 2019?", s2, lambda _: doc2)[0] is not None
    doc3 = "Alibaba makes software. " + doc.replace("flagship", "2019 flagship")  # two back, and not the lead
    s3 = [placed(Sentence("a.txt", start + 5, doc3.index(" Sales"), doc3[start + 5:doc3.index(" Sales")], doc3.index("It is"), "", 1.0, 0.5),
                 doc3)]
    found, why = ground.ground(ground.ReaderDraft("Dingtalk", 1), "Which product did Tongyi Qianwen reach first in 2019?", s3, lambda _: doc3)
    assert found is None and "2019" in why


# --- yes/no questions --------------------------------------------------------------------------------------

@pytest.mark.parametrize("q, expected", [
    ("Did Alibaba go public in New York?", True), ("Is Zhang the chief executive?", True),
    ("Has Dingtalk passed 600 million users?", True), ("Was the IPO in New York or Hong Kong?", False),
    ("When did Alibaba go public?", False), ("Who is the chief executive?", False),
    # a leading clause before the auxiliary that asks
    ("After grep -P stopped multiline matching, is it still faster than pcregrep?", True),
    ("Under the licence, must recipients get a copy of it?", True),
    ("When grep -F is given many patterns, which algorithm does it use?", False),
    ("Where, in the licence, is it defined?", False), ("How, in short, does it work?", False)])
def test_yes_no_questions_are_told_apart(q, expected):
    assert ground.is_yes_no(q) is expected


def test_the_kind_of_answer_is_asked_by_the_clause_after_a_leading_one():
    q = "When grep -F is given many patterns, which algorithm does it now use?"
    assert cite.asking_clause(q).strip().startswith("which")
    assert cite.answers_kind("the Aho-Corasick algorithm", q)  # "when" opens the clause, it asks no date
    q2 = "In 2021, how many users did Dingtalk have?"
    assert not cite.answers_kind("a great many", q2) and cite.answers_kind("600 million", q2)
    assert cite.asking_clause("When did tar 1.33 come out, and why?") == "When did tar 1.33 come out, and why?"


def test_a_yes_may_rest_on_a_sentence_with_the_one_before_it():
    doc = "LZMA2 decompression speed is good. It is a lot faster than bzip2."
    start = doc.index("It is")
    s = [placed(Sentence("x.txt", start, len(doc), doc[start:], 0, "", 1.0, 0.5), doc)]
    found, why = ground.ground(ground.ReaderDraft("Yes", 1), "Is the LZMA2 decompression speed good?", s, lambda _: doc)
    assert found is not None and found.answer == "Yes" and found.start == 0 and found.text == doc, why
    alone = [placed(Sentence("x.txt", start, len(doc), doc[start:], start, "", 1.0, 0.5), doc)]  # no sentence before it
    assert ground.ground(ground.ReaderDraft("Yes", 1), "Is the LZMA2 decompression speed good?", alone,
                         lambda _: doc)[0] is None


def test_a_yes_rests_on_a_sentence_holding_the_question():
    found, _ = run("Yes", "Did Alibaba go public in New York?", 1)
    assert found and found.answer == "Yes" and found.text == P1
    assert ground.needs_check("Did Alibaba go public in New York?", found)  # the reader's check always reads a yes


@pytest.mark.parametrize("q", [
    "Did Alibaba go public in London?",                     # a name the evidence lacks
    "Did Alibaba go public in New York in 2019?",           # a year the evidence lacks
])
def test_a_yes_is_refused_when_the_evidence_lacks_what_is_asked(q):
    found, why = run("Yes", q, 1)
    assert found is None and why


def test_negated_evidence_never_confirms():
    assert not ground.confirms("Did Alibaba go public in New York?", "Alibaba did not go public in New York.")
    assert ground.confirms("Did Alibaba not go public in New York?", "Alibaba did not go public in New York.")


def test_a_negation_after_or_is_an_alternative_and_a_removal_is_a_negation():
    q = "Does the GPL-3 let you charge a price for each copy you convey?"
    assert ground.confirms(q, "GPL-3\nYou may charge any price or no price for each copy that you convey.")
    assert not ground.confirms(q, "GPL-3\nYou may not charge a price for each copy that you convey.")
    assert not ground.confirms("Is gzip still supported on VMS?", "Support for VMS has been removed from gzip.")
    assert ground.confirms("Was support for VMS removed from gzip?", "Support for VMS has been removed from gzip.")


def test_a_no_is_shown_only_where_a_sentence_denies_the_claim():
    # The sentence not confirming a listing in London is not the text denying one: no "No".
    found, why = run("No", "Did Alibaba go public in London?", 1)
    assert found is None and "denies" in why
    doc = "Harbor Ferries said on Monday that the new route will not stop at Pier 4. Tickets cost $3."
    one = [placed(Sentence("h.txt", 0, doc.index(" Tickets"), doc[:doc.index(" Tickets")], 0, "", 1.0, 0.5), doc)]
    found, _ = ground.ground(ground.ReaderDraft("No", 0), "Will the new ferry route stop at Pier 4?", one, lambda s: doc)
    assert found is not None and found.answer == "No" and found.text.endswith("will not stop at Pier 4.")
    # the check is not asked about a "No" (it reads a bare "No" as its own verdict); a "Yes" it always reads
    assert not ground.needs_check("Will the new ferry route stop at Pier 4?", found)
    # A negation the question itself makes denies nothing; nor does a denial of something else.
    assert not ground.denies("Will the new route not stop at Pier 4?", doc)
    assert not ground.denies("Will the route stop at Pier 9 on Sundays?", "Ferries will not run on Sundays.")


def test_a_no_from_a_word_and_its_opposite():
    text = "The licence granted here is perpetual, worldwide and irrevocable."
    assert ground.denies("Is the licence granted here revocable?", text)
    assert not ground.denies("Is the licence granted here irrevocable?", text)  # it says so: a yes, not a no
    assert ground.denies("Is the licence irrevocable?", "This licence is revocable at any time.")


def test_the_question_s_names_and_year_may_be_met_by_the_document_s_metadata():
    doc = "The council approved the new ferry timetable on Tuesday, adding 12 crossings a day."
    q = "How many crossings a day did the Harbor Gazette report the council added in 2023?"
    plain = placed(Sentence("g.html", 0, len(doc), doc, 0, "Ferry timetable approved", 1.0, 0.5), doc)
    assert constraints.constraints_missing_around(q, plain, doc) == ["2023", "gazette", "harbor"]
    about = "Ferry timetable approved\nHarbor Gazette\n2023-05-12 12 May 2023"
    with_meta = placed(Sentence("g.html", 0, len(doc), doc, 0, "Ferry timetable approved", 1.0, 0.5, about=about), doc)
    assert constraints.constraints_missing_around(q, with_meta, doc) == []
    found, _ = ground.ground(ground.ReaderDraft("12", 0), q, [with_meta], lambda s: doc)
    assert found is not None and found.answer == "12"


def test_a_name_written_out_in_the_question_is_met_by_its_abbreviation():
    text = "The NBA fined the team $50,000 for the delay."
    q = "How much did the National Basketball Association fine the team?"
    assert constraints.missing_constraints(q, text) == []
    assert constraints.missing_constraints(q, "The league fined the team $50,000.") == ["association", "basketball", "national"]
    assert constraints.missing_constraints("What did the Union of European Football Associations decide?",
                                      "UEFA decided to move the final.") == []


@pytest.mark.parametrize("answer, question, evidence, shown", [
    ("60", "How many days do you have?", "is reinstated within 60 days after the notice.", "60 days"),
    ("2.7", "How much did the cloud unit earn?", P3, "$2.7 billion"),
    ("2.7 billion", "How much did the cloud unit earn?", P3, "$2.7 billion"),  # its unit, but not its sign
    ("2.7 billion", "How much?", "2.7 billion users, $2.7 million", "2.7 billion"),  # that sign is another amount's
    ("$2.7 billion", "How much did the cloud unit earn?", P3, "$2.7 billion"),
    ("9", "What share of revenue?", P3, "9%"),
    ("2021", "When did version 3.0 come out?", "Changes in 3.0 [7 Sep 2021]", "7 Sep 2021"),  # the whole date
    ("2007", "When was version 3 issued?", "Version 3, 29 June 2007", "29 June 2007"),
    ("June 2007", "When was it issued?", "published June 29, 2007.", "June 29, 2007"),
    ("2021", "In what year did 3.0 come out?", "Changes in 3.0 [7 Sep 2021]", "2021"),  # the year was asked
    ("2021", "When did it come out?", "2021-01-07 and 2021-02-13", "2021"),  # which date is not for the code to pick
    ("1999", "When was it published?", "Version 2.1, February 1999", "1999"),  # no fuller date: as it is
    ("2021", "When was 1.33 released?", "version 1.33 - Sergey Poznyakoff, 2021-01-07", "2021-01-07"),
    ("6", "How many groups?", "six groups, 6 of them new", "6"),  # "groups" is not a unit
    ("9%", "What share?", "9% of revenue", "9%"),
    ("Hong Kong", "Where?", P4, "Hong Kong"),
])
def test_a_bare_number_is_completed_to_its_quantity_from_the_evidence(answer, question, evidence, shown):
    assert ground.complete_answer(answer, evidence, question) == shown


XZ = "With typical files, XZ Utils create about 30 % smaller files than gzip."


@pytest.mark.parametrize("answer, question, evidence, shown", [
    ("30%", "How does the size of xz output compare with gzip output?", XZ, "30% smaller"),  # the direction
    ("30", "How much smaller than gzip output is it?", XZ, "30 % smaller"),  # unit, then direction
    ("4", "How much quicker is it compared with before?", "now up to 4 times faster by using", "4 times faster"),
    ("30%", "What share of files does xz shrink?", XZ, "30%"),  # no comparison asked: as it is
    ("5", "How many more accounts than root are there?", "there are 5 other accounts than root", "5"),  # not a comparative
])
def test_a_number_answering_a_comparison_keeps_its_direction(answer, question, evidence, shown):
    assert ground.complete_answer(answer, evidence, question) == shown


def test_a_grounded_number_is_shown_with_its_unit():
    doc = "Your rights are restored. They end if you are not told within 60 days after you stop."
    start = doc.index("They")
    s = placed(Sentence("l.txt", start, len(doc), doc[start:], start, "", 1.0, 0.5), doc)
    found, _ = ground.ground(ground.ReaderDraft("60", 1), "How long can the holder wait to tell you?", [s], lambda _: doc)
    assert found and found.answer == "60 days" and found.text == doc[start:]


def test_names_joined_by_underscores_are_read_as_their_parts():
    text = "If XDG_DATA_HOME is set, the history file is kept in $XDG_DATA_HOME/lesshst instead."
    assert ground.supports_answer("XDG_DATA_HOME/lesshst", text)
    assert not constraints.missing_constraints("If XDG_DATA_HOME is set, where is the history file kept?", text)


def _token(text, alternatives):
    """One token of an OpenAI-format logprobs list: its top alternatives as {token: probability}."""
    import math

    return {"token": text, "logprob": math.log(alternatives.get(text, 1.0)),
            "top_logprobs": [{"token": t, "logprob": math.log(p)} for t, p in alternatives.items()]}


def test_yes_probability_reads_the_verdict_token_and_renormalises_yes_against_no():
    reply = [_token('{"', {'{"': 0.9, "```": 0.1}), _token("ver", {"ver": 1.0}), _token('": "', {'": "': 1.0}),
             _token("yes", {"yes": 0.45, "y": 0.05, "no": 0.3, "```": 0.2}), _token('"}', {'"}': 1.0})]
    assert abs(ground.yes_probability(reply) - 0.5 / 0.8) < 1e-9
    no_first = [_token("no", {"no": 0.7, "yes": 0.3})]
    assert abs(ground.yes_probability(no_first) - 0.3) < 1e-9
    # no log-probabilities, or none where yes/no hold the probability: unknown, not 0
    assert ground.yes_probability([]) is None
    assert ground.yes_probability([_token("{", {"{": 1.0})]) is None
    assert ground.yes_probability([{"token": "yes", "logprob": "junk", "top_logprobs": [{"token": "yes", "logprob": None}]}]) is None


def test_check_passes_needs_a_written_yes_that_is_likely_enough():
    assert ground.check_passes("yes", 0.9, 0.575)
    assert not ground.check_passes("yes", 0.56, 0.575)  # a near miss the check was unsure of
    assert not ground.check_passes("no", 0.9, 0.575)  # never more lenient than the verdict as written
    assert ground.check_passes("yes", None, 0.575) and not ground.check_passes("no", None, 0.575)


def test_a_digit_inside_a_name_in_the_question_does_not_make_that_number_a_restatement():
    q = "Under the GPLv3, for at least how many years must a written offer stay valid?"
    assert cite.adds_information("3", q) and ground.acceptable("3", q)
    assert not cite.adds_information("2014", "Where did Alibaba go public in 2014?")  # stated: a restatement
    assert not cite.adds_information("1", "How many units go under one umbrella?")  # "one" is stated too
    assert not cite.adds_information("GPT-3", "How far behind GPT-3 is the model?")  # the name restated
    assert cite.adds_information("GPT-4", "Which model came after GPT-3?")
    assert cite.adds_information("Q4 2021", "When did it rank fourth, Q4 2022?")


def test_a_version_written_after_a_name_and_a_hyphen_is_a_number_of_the_text():
    text = "This is a terse description of the new features added to bash-5.1 since the release of bash-5.0."
    assert ground.supports_answer("5.1", text) and ground.supports_answer("bash-5.1", text)
    assert not ground.supports_answer("5.2", text)
    assert cite.numbers_bound("5.1 since", text) and not cite.numbers_bound("5.1 users", text)


def test_a_number_only_the_title_holds_does_not_answer_a_question_about_a_named_release():
    news = "version 1.33 - Sergey Poznyakoff, 2021-01-07\n\n* POSIX extended format headers do not include PID."
    start = news.index("* POSIX") + 2
    heading = (0, news.index("\n"))
    s = [placed(Sentence("tar.txt", start, len(news), news[start:], start,
                         "GNU tar NEWS 2021-02-13 — version 1.33 - Sergey Poznyakoff, 2021-01-07", 1.0, 0.5, (heading,)), news)]
    def ask(answer, q):
        return ground.ground(ground.ReaderDraft(answer, 1), q, s, lambda _: news)[0]

    assert ask("2021-02-13", "On what date did GNU tar 1.33 come out?") is None  # the title's date is the file's
    assert ask("2021-01-07", "On what date did GNU tar 1.33 come out?") is not None  # the release heading's
    assert ask("2021-02-13", "When was the GNU tar NEWS file last updated?") is not None  # a question about the file


def test_british_and_american_spellings_match():
    for brit, us in [("licence", "license"), ("licences", "licenses"), ("organisation", "organization"),
                     ("organised", "organized"), ("behaviour", "behavior"), ("centre", "center"),
                     ("analysing", "analyzing"), ("catalogue", "catalog")]:
        assert cite.stem(brit) == cite.stem(us), brit
    for word in ("four", "hour", "your", "raise", "rise", "vogue", "license"):  # no British spelling: unchanged
        assert cite.american(word) == word
    assert cite.content_words("What licence did OpenSSL adopt?") & cite.content_words("Changed the license to Apache")
    assert ground.supports_answer("the licence fee", "They pay the license fee.")


@pytest.mark.parametrize("answer, question, ok", [
    ("Send bug reports, comments, questions, etc. to", "Who should I contact with bug reports about mawk?", False),
    ("the licence of", "What governs the use of the fonts?", False),  # cut off before what it was asked for
    ("bigger than.", "How does the new archive size compare?", False),
    ("Thomas E. Dickey", "Who should I contact with bug reports about mawk?", True),
    ("Plan A", "What did the board choose?", True),  # "a" can close a name
    ("opt in", "What must users do to get the reports?", True),  # so can the particle of a phrasal verb
    ("Toronto", "Where is the office?", True),  # a word merely ending in "to"
])
def test_an_answer_cut_off_before_its_point_is_not_an_answer(answer, question, ok):
    assert ground.acceptable(answer, question) is ok


def test_a_rate_per_unit_is_the_number_it_states_and_per_cent_stays_a_scale():
    wage = "New Jersey residents voted to raise the state's minimum wage by $1 to $8.25 per hour."
    assert cite.numbers_bound("8.25", wage) and ground.supports_answer("8.25", wage)
    assert ground.complete_answer("8.25", wage) == "$8.25"
    assert cite.numbers_bound("9%", "revenues rose 9 per cent") and cite.numbers_bound("9 per cent", "revenues rose 9%")
    assert not cite.numbers_bound("9", "revenues rose 9 per cent")  # a bare 9 is not 9 per cent
    assert not cite.numbers_bound("9 million", "revenues rose 9 per cent")


def test_a_place_and_its_adjective_are_one_name_either_way():
    text = "On April 11, 2019, British police raided the Ecuadorian embassy in London and dragged Assange out."
    assert constraints.missing_constraints("When was Assange hauled out of Ecuador's London embassy?", text) == []
    assert constraints.missing_constraints("When was Assange hauled out of Peru's London embassy?", text) == ["peru"]
    assert constraints.missing_constraints("What did the Israeli army say?", "The army of Israel said so.") == []
    for place, adjective in [("canada", "canadian"), ("italy", "italian"), ("mexico", "mexican"), ("korea", "korean"),
                             ("japan", "japanese"), ("israel", "israeli")]:
        assert constraints.name_in(place, {adjective}) and constraints.name_in(adjective, {place}), place
    assert not constraints.name_in("christian", constraints.word_forms("Christie said so."))  # a person's name is not a place's
    assert constraints.name_in("iran", {"iranian"}) and not constraints.demonyms("uae")  # names under 4 letters get none


def test_a_year_in_a_name_is_no_count():
    evidence = "Those left out include the World War One film 1917, the big winner at the guild awards."
    q = "How many Oscar nominations did Parasite receive?"
    s = placed(Sentence("q.txt", 0, len(evidence), evidence, 0, "", 1.0, 0.5), evidence)
    assert ground.ground(ground.ReaderDraft("1", 1), q, [s], lambda _: evidence)[0] is None
    assert ground.ground(ground.ReaderDraft("1917", 1), "Which film won?", [s], lambda _: evidence)[0] is not None


def test_a_what_date_question_is_answered_by_a_date():
    q = "On what date does the new season start?"
    for answer, ok in [("August 28", True), ("28 Aug.", True), ("2021-01-07", True), ("Friday", True), ("the 28th", True),
                       ("10:00 a.m.", False), ("season 4", False), ("may start later", False)]:
        assert cite.answers_kind(answer, q) is ok, answer
    assert cite.answers_kind("10:00 a.m.", "At what time does it start?")


def test_a_name_with_letters_beyond_ascii_is_read_whole():
    """A name is met by the same name in the evidence however it is spelt ("Kitzbühel", "Zürich"), and a
    different name sharing its ASCII start is not it."""
    assert constraints.missing_constraints("On which day does Kitzbühel open?", "Kitzbühel opens on 14 October.") == []
    assert constraints.missing_constraints("When does Zürich vote?", "Zürich votes in June.") == []
    assert constraints.missing_constraints("When does Kitzbühel open?", "Kitzbach opens on 14 October.") == ["kitzbühel"]


def test_each_ablation_variant_switches_off_a_rule_grounding_calls(monkeypatch):
    """benchmarks/ablation.py replaces module functions: each it names must exist where it does (setattr would
    quietly add a new one and switch nothing off), and replacing it must change what grounding decides."""
    import importlib
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "benchmarks"))
    ablation = importlib.import_module("ablation")
    for name, changes in ablation.VARIANTS.items():
        assert all(hasattr(module, attr) for module, attr in changes), name
    # A name met only in the story's section, three sentences back; a year no sentence holds.
    doc = ("Shirley Strachan flew out. Then it rained. Then it snowed. The weather was fine. "
           "The helicopter was struck by a mountain wave.")
    start = doc.index("The helicopter")
    s = placed(Sentence("a.txt", start, len(doc), doc[start:], doc.index("The weather"), "", 1.0, 0.5), doc)

    def grounded(question):
        return ground.ground(ground.ReaderDraft("a mountain wave", 1), question, [s], lambda _: doc)[0] is not None

    assert grounded("What struck Shirley Strachan's helicopter?")
    assert not grounded("What struck Bon Scott's helicopter?") and not grounded("What struck the helicopter in 1983?")
    for variant, question, shipped in [("no-headings", "What struck Shirley Strachan's helicopter?", True),
                                       ("no-names", "What struck Bon Scott's helicopter?", False),
                                       ("no-numbers", "What struck the helicopter in 1983?", False)]:
        with ablation.patched(variant):
            assert grounded(question) is not shipped, variant
