"""Settings: every field can come from QA_BOT_<NAME>, and a bad value fails when Settings is built, with one
line naming the environment variable."""
import pytest

from qa_bot import QABotError, Settings
from qa_bot.settings import AT_LEAST, CHOICES


def test_environment_values_are_typed():
    s = Settings.from_env({"QA_BOT_TOP_K": "4", "QA_BOT_MIN_SIMILARITY": "0.3", "QA_BOT_READER_CHECK": "off",
                           "QA_BOT_CORPUS_DIR": "~/docs", "QA_BOT_LLM_BACKEND": "openai"})
    assert s.top_k == 4 and s.min_similarity == 0.3 and s.reader_check is False and s.llm_backend == "openai"
    assert "~" not in str(s.corpus_dir)
    assert Settings.from_env({"QA_BOT_READER_CHECK": "YES"}).reader_check is True


@pytest.mark.parametrize("name", sorted(CHOICES))
def test_a_choice_field_takes_only_its_choices(name):
    with pytest.raises(QABotError) as err:
        Settings.from_env({f"QA_BOT_{name.upper()}": "nonsense"})
    msg = str(err.value)
    assert msg.startswith(f"QA_BOT_{name.upper()}='nonsense' is not one of: ") and "\n" not in msg
    assert all(c in msg for c in CHOICES[name])


@pytest.mark.parametrize("name", sorted(AT_LEAST))
def test_a_number_below_its_least_fails_naming_the_variable(name):
    with pytest.raises(QABotError, match=f"^QA_BOT_{name.upper()}=.* must be at least"):
        Settings.from_env({}, **{name: AT_LEAST[name] - 1})


@pytest.mark.parametrize("env, message", [
    ({"QA_BOT_TOP_K": "six"}, "QA_BOT_TOP_K='six' is not a valid int"),
    ({"QA_BOT_READER_CHECK": "ture"}, "QA_BOT_READER_CHECK='ture' is not one of 1, true, yes, on, 0, false, no, off"),
    ({"QA_BOT_MIN_SIMILARITY": "1.5"}, "QA_BOT_MIN_SIMILARITY=1.5 must be at most 1 (it is a cosine)"),
    ({"QA_BOT_CHECK_MIN_YES": "1.2"}, "QA_BOT_CHECK_MIN_YES=1.2 must be between 0 and 1 (a probability)"),
    ({"QA_BOT_CHECK_MIN_YES": "-0.1"}, "QA_BOT_CHECK_MIN_YES=-0.1 must be between 0 and 1 (a probability)"),
    ({"QA_BOT_LLM_TIMEOUT": "0"}, "QA_BOT_LLM_TIMEOUT=0.0 must be more than 0 seconds"),
])
def test_bad_values_fail_with_one_line(env, message):
    with pytest.raises(QABotError) as err:
        Settings.from_env(env)
    assert str(err.value) == message


def test_a_number_field_given_text_in_code_is_a_clear_error():
    with pytest.raises(QABotError, match=r"^QA_BOT_TOP_K='6' is not a number$"):
        Settings(top_k="6")


def test_defaults_are_valid_and_replace_validates_too():
    s = Settings.from_env({})
    assert s == Settings()
    with pytest.raises(QABotError, match="QA_BOT_READER_SENTENCES"):
        s.replace(reader_sentences=0)
