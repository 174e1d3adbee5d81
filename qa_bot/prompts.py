"""Prompts as named constants. They ask for grounded, cited answers, but nothing relies on the model
obeying them: cite.verify enforces grounding in code."""

REFUSAL = "The article does not say."

SYSTEM_PROMPT = (
    "You answer questions about a news article using only the numbered passages you are given. "
    "Answer in one short sentence and put the number of the passage you used in brackets, like [1]. "
    f'If the passages do not contain the answer, reply exactly: "{REFUSAL}"'
)

# {passages} is a block of lines "[n] passage text"; the question comes last so the model answers it.
USER_PROMPT = "Passages:\n{passages}\n\nQuestion: {question}\nAnswer:"

PASSAGE_LINE = "[{n}] {text}"
