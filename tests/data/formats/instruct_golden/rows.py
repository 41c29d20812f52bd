"""Hand-written rows for the instruct-style golden tests: one list per dataset entry.

Each CASE is (case name, dataset entry keys, rows). The axolotl 0.21.0 ids for these rows are in
axolotl_0.21.0.json, written by regenerate.py.
"""

from __future__ import annotations

ALPACA = [
    {"instruction": "Name the largest planet.", "input": "", "output": "Jupiter."},
    {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"},
    {"instruction": "Say nothing.", "input": "", "output": ""},
]
QA = [{"question": "What do bees make?", "answer": "Honey."}]
CAMEL = [{"message_1": "Explain a haiku in one line.", "message_2": "Three lines, five-seven-five syllables."}]
W_SYSTEM = [
    {"system": "You answer in one word.", "instruction": "Colour of the sky?", "input": "", "output": "Blue"},
    {"system": "", "instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
]
OPEN_ORCA = [{"system_prompt": "You are terse.", "question": "Capital of Peru?", "response": "Lima."},
             {"system_prompt": "", "question": "Opposite of cold?", "response": "Hot."}]
JEOPARDY = [{"question": "This red planet is fourth from the sun.", "category": "SPACE", "answer": "Mars"}]
OASST = [{"INSTRUCTION": "Give me a synonym for quick.", "RESPONSE": "Rapid."}]
GPTEACHER = [{"instruction": "Rewrite politely.", "input": "Close the door.", "response": "Could you close the door, please?"},
             {"instruction": "Count to three.", "input": "", "response": "One, two, three."}]
REFLECTION = [
    {"instruction": "Why is ice slippery?", "input": "", "output": "A thin water layer.",
     "reflection": "Pressure melting is only part of it.", "corrected": "Surface molecules stay mobile."},
    {"instruction": "Sum these.", "input": "1, 2", "output": "3", "reflection": "", "corrected": "3"},
]
CHOICE = [{"question": "Which is a mammal?", "choices": ["Shark", "Dolphin", "Trout"], "explanation": "Dolphins breathe air."}]
CONCISE = [{"question": "Which gas do plants absorb?", "choices": ["Oxygen", "Carbon dioxide"], "solution": "Carbon dioxide"}]
TLDR = [{"article": "The town fair opened on Friday with rides, food stalls and a pie contest.", "summary": "Town fair opens."}]
CONTEXT = [{"article": "Otters hold hands while sleeping.", "question": "Why do otters hold hands?", "answer": "To stay together."}]
CONTEXT_V2 = [{"context": "The bakery opens at 7.", "question": "When does it open?", "answer": "At 7."}]
CONTEXT_404 = [{"article": "Cats sleep a lot.", "unanswerable_question": "How fast can cats swim?"}]
CREATIVE = [{
    "instruction": "Describe rain to someone who has never seen it.",
    "answer": "Water falls from clouds.",
    "revision": "Imagine the sky quietly letting go of a million cool beads.",
    "scores": {"refusal": 10, "prescriptive_bias": 9, "creativity": 3, "comprehensiveness": 4},
    "critiques": {
        "refusal": {"explanation": "It answers.", "improvements": "None needed."},
        "prescriptive_bias": {"explanation": "No advice given.", "improvements": "Keep it so."},
        "creativity": {"explanation": "Plain wording.", "improvements": "Use imagery."},
        "comprehensiveness": {"explanation": "Very short.", "improvements": "Add sound and smell."},
    },
}]
METHARME = [
    {"prompt": "<|system|>Enter roleplay mode.<|user|>Hello there.<|model|>", "generation": "Hi! Nice to meet you."},
    {"prompt": "<|user|>Say nothing.<|model|>", "generation": ""},
]
PYGMALION = [{"conversations": [
    {"role": "system", "value": "Tom is a cheerful baker.\n<START>"},
    {"role": "human", "value": "What are you baking?"},
    {"role": "bot", "value": " Sourdough, fresh from the oven! "},
    {"role": "human", "value": "Can I have some?"},
    {"role": "bot", "value": "Of course."},
]}]
USER_DEFINED = [
    {"persona": "You are a poet.", "topic": "Write about snow.", "mood": "calm", "verse": "White hush on the hill."},
    {"persona": None, "topic": "Write about fire.", "mood": "", "verse": "It dances and eats."},
]
USER_DEFINED_TYPE = {
    "system_prompt": "You write short verses.", "system_format": "<<{system}>>\n", "field_system": "persona",
    "field_instruction": "topic", "field_input": "mood", "field_output": "verse",
    "format": "[INST] {instruction} (mood: {input}) [/INST]", "no_input_format": "[INST] {instruction} [/INST]",
}
USER_DEFINED_MIN = [{"instruction": "Greet me.", "input": "warmly", "output": "Hello, friend!"},
                    {"instruction": "Wave.", "output": "*waves*"}]
# Special tokens written in the text, braces, null fields: where BOS/EOS handling is easy to get wrong.
EDGE_ALPACA = [
    {"instruction": "Reply.", "input": "", "output": "Yes.</s>"},
    {"instruction": "Reply.", "input": "", "output": "Yes.<|im_end|>"},
    {"instruction": "Reply.", "input": "", "output": "<|im_start|>Hi"},
    {"instruction": "Reply.", "input": "", "output": "<s>Hi"},
    {"instruction": "Keep {braces} as is.", "input": "{input}", "output": " spaced  out "},
    {"instruction": "Nothing here.", "input": None, "output": None},
]
EDGE_METHARME = [{"prompt": "<|user|>bye<|model|>", "generation": "Bye.</s>"}, {"prompt": "<|user|>x<|model|>", "generation": "Bye.<|im_end|>"}]
EDGE_PYGMALION = [{"conversations": [
    {"role": "human", "value": "  hi  "}, {"role": "bot", "value": "Sure.</s>"},
    {"role": "human", "value": "again"}, {"role": "bot", "value": "Sure.<|im_end|>"},
]}]
EDGE_REFLECTION = [{"instruction": "Check.", "input": "", "output": "a", "reflection": "b", "corrected": "c</s>"}]

# (case name, dataset entry keys besides path, rows)
CASES: list[tuple[str, dict, list[dict]]] = [
    ("alpaca", {"type": "alpaca"}, ALPACA),
    ("alpaca_chat_style", {"type": "alpaca:chat"}, ALPACA),
    ("alpaca_chatml_style", {"type": "alpaca:chatml"}, ALPACA),
    ("alpaca_phi_style", {"type": "alpaca:phi"}, ALPACA),
    ("alpaca_instruct", {"type": "alpaca_instruct"}, ALPACA[:2]),
    ("alpaca_instruct_no_prompt", {"type": "alpaca_instruct.load_no_prompt"}, ALPACA[:2]),
    ("alpaca_chat", {"type": "alpaca_chat"}, ALPACA[:2]),
    ("alpaca_chat_conversation", {"type": "alpaca_chat", "conversation": "chatml"}, ALPACA[:2]),
    ("alpaca_chat_concise", {"type": "alpaca_chat.load_concise"}, ALPACA[:2]),
    ("alpaca_chat_qa", {"type": "alpaca_chat.load_qa"}, QA),
    ("alpaca_chat_camel_ai", {"type": "alpaca_chat.load_camel_ai"}, CAMEL),
    ("alpaca_chat_no_prompt", {"type": "alpaca_chat.load_no_prompt"}, ALPACA[:2]),
    ("alpaca_w_system", {"type": "alpaca_w_system"}, W_SYSTEM),
    ("alpaca_w_system_instruct", {"type": "alpaca_w_system.load_instruct"}, W_SYSTEM),
    ("alpaca_w_system_open_orca", {"type": "alpaca_w_system.load_open_orca"}, OPEN_ORCA),
    ("alpaca_w_system_open_orca_chatml", {"type": "alpaca_w_system.load_open_orca_chatml"}, OPEN_ORCA),
    ("orcamini", {"type": "orcamini"}, OPEN_ORCA),
    ("jeopardy", {"type": "jeopardy"}, JEOPARDY),
    ("jeopardy_chat", {"type": "jeopardy:chat"}, JEOPARDY),
    ("oasst", {"type": "oasst"}, OASST),
    ("oasst_phi", {"type": "oasst:phi"}, OASST),
    ("gpteacher", {"type": "gpteacher"}, GPTEACHER),
    ("gpteacher_chatml", {"type": "gpteacher:chatml"}, GPTEACHER),
    ("reflection", {"type": "reflection"}, REFLECTION),
    ("reflection_instruct", {"type": "reflection:instruct"}, REFLECTION),
    ("reflection_chat", {"type": "reflection:chat"}, REFLECTION),
    ("explainchoice", {"type": "explainchoice"}, CHOICE),
    ("explainchoice_chat", {"type": "explainchoice:chat"}, CHOICE),
    ("concisechoice", {"type": "concisechoice"}, CONCISE),
    ("concisechoice_chatml", {"type": "concisechoice:chatml"}, CONCISE),
    ("summarizetldr", {"type": "summarizetldr"}, TLDR),
    ("context_qa", {"type": "context_qa"}, CONTEXT),
    ("context_qa_v2", {"type": "context_qa.load_v2"}, CONTEXT_V2),
    ("context_qa_404", {"type": "context_qa.load_404"}, CONTEXT_404),
    ("creative_acr_answer", {"type": "creative_acr.load_answer"}, CREATIVE),
    ("creative_acr_critique", {"type": "creative_acr.load_critique"}, CREATIVE),
    ("creative_acr_revise", {"type": "creative_acr.load_revise"}, CREATIVE),
    ("metharme", {"type": "metharme"}, METHARME),
    ("pygmalion", {"type": "pygmalion"}, PYGMALION),
    ("user_defined", {"type": USER_DEFINED_TYPE}, USER_DEFINED),
    ("user_defined_defaults", {"type": {"field_instruction": "instruction"}}, USER_DEFINED_MIN),
    ("alpaca_edge", {"type": "alpaca"}, EDGE_ALPACA),
    ("metharme_edge", {"type": "metharme"}, EDGE_METHARME),
    ("pygmalion_edge", {"type": "pygmalion"}, EDGE_PYGMALION),
    ("reflection_edge", {"type": "reflection"}, EDGE_REFLECTION),
]
