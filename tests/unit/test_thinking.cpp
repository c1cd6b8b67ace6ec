// Thinking output: <think>...</think> split into thinking and content, streamed in pieces cut at
// every byte position (tags split across chunks are held back, never leaked into content), output
// that starts inside a template-opened <think>, finish() flushing, template capability detection
// and rendering Qwen3 / DeepSeek-R1 templates with thinking on and off.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "test_paths.h"
#include "text/chat.h"
#include "text/thinking.h"

namespace hearth {
namespace test_thinking {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct Split {
  std::string thinking, content;
};

// Feeds `text` cut at every pair of positions (three chunks) and checks each way agrees. Output
// is append-only, so equal totals also mean no tag bytes were released early.
void expect_split(const std::string& text, bool in_thinking, const Split& want) {
  SCOPED_TRACE(text);
  const ThinkingDelta whole = split_thinking(text, in_thinking);
  EXPECT_EQ(whole.thinking, want.thinking);
  EXPECT_EQ(whole.content, want.content);
  for (size_t i = 0; i <= text.size(); ++i) {
    for (size_t j = i; j <= text.size(); ++j) {
      ThinkingParser p(in_thinking);
      std::string th, co;
      for (auto piece : {text.substr(0, i), text.substr(i, j - i), text.substr(j)}) {
        ThinkingDelta d = p.push(piece);
        th += d.thinking;
        co += d.content;
      }
      ThinkingDelta d = p.finish();
      th += d.thinking;
      co += d.content;
      ASSERT_EQ(th, want.thinking) << "cut at " << i << "," << j;
      ASSERT_EQ(co, want.content) << "cut at " << i << "," << j;
    }
  }
}

TEST(Thinking, SplitsTaggedOutput) {
  expect_split("<think>Let me see.</think>Paris.", false, {"Let me see.", "Paris."});
  // Whitespace after <think>, around </think> and before the first tag is not part of either.
  expect_split("\n<think>\n  two steps\n</think>\n\nThe answer", false, {"two steps", "The answer"});
  // An empty thought (Qwen3 with thinking off echoes this).
  expect_split("<think>\n\n</think>\n\nHi", false, {"", "Hi"});
  // Inner whitespace and newlines of the thought are kept.
  expect_split("<think>a\n\nb </think>c", false, {"a\n\nb", "c"});
}

TEST(Thinking, NoThinkingIsAllContent) {
  // The first visible text is not <think>: everything (leading spaces included) is content, and a
  // later <think> is just text.
  expect_split("  Hello <think>x</think>", false, {"", "  Hello <think>x</think>"});
  expect_split("<thinking is fun", false, {"", "<thinking is fun"});
  expect_split("", false, {"", ""});
}

TEST(Thinking, StartsInsideTemplateOpenedThink) {
  // DeepSeek-R1 distills: the prompt ends with "<think>\n"; output begins inside the thought.
  expect_split("\nOkay, 2+2.\n</think>\n\n4", true, {"Okay, 2+2.", "4"});
  expect_split("no close tag yet ", true, {"no close tag yet", ""});
}

TEST(Thinking, HoldsPartialTagsUntilResolved) {
  ThinkingParser p;
  ThinkingDelta d = p.push(" <thi");
  EXPECT_EQ(d.thinking, "");
  EXPECT_EQ(d.content, "");
  d = p.push("nk>plan");
  EXPECT_EQ(d.thinking, "plan");
  d = p.push(" more </th");
  EXPECT_EQ(d.thinking, " more");  // the space before a possible tag is held
  EXPECT_FALSE(p.done_thinking());
  d = p.push("ink> done");
  EXPECT_EQ(d.thinking, "");
  EXPECT_EQ(d.content, "done");
  EXPECT_TRUE(p.done_thinking());
  // A cut tag that turns out not to be one is released as thought text.
  ThinkingParser q(true);
  EXPECT_EQ(q.push("a </thx").thinking, "a </thx");
  // finish() flushes held bytes: an unterminated thought stays thinking, a cut "<thi" is content.
  ThinkingParser r(true);
  EXPECT_EQ(r.push("abc </thi").thinking, "abc");
  EXPECT_EQ(r.finish().thinking, " </thi");
  ThinkingParser s;
  EXPECT_EQ(s.push("<thi").content, "");
  EXPECT_EQ(s.finish().content, "<thi");
}

TEST(Thinking, PromptOpensThinking) {
  EXPECT_TRUE(prompt_opens_thinking("<|Assistant|><think>\n"));
  EXPECT_FALSE(prompt_opens_thinking("<|im_start|>assistant\n<think>\n\n</think>\n\n"));
  EXPECT_FALSE(prompt_opens_thinking("<|im_start|>assistant\n"));
}

Vocab vocab_with(const std::string& tmpl) {
  Vocab v;
  v.tokens = {"<s>", "</s>"};
  v.types = {TokenType::control, TokenType::control};
  v.bos = 0;
  v.eos = 1;
  v.chat_template = tmpl;
  return v;
}

ChatRequest hello(std::optional<bool> think) {
  ChatRequest req;
  req.messages = nlohmann::ordered_json::parse(R"([{"role": "user", "content": "hi"}])");
  req.think = think;
  return req;
}

TEST(Thinking, Qwen3TemplateSwitch) {
  auto src = read_file(test::shared_path("templates/qwen3.jinja"));
  if (!src) GTEST_SKIP() << "missing qwen3.jinja";
  EXPECT_TRUE(template_supports_thinking(*src));
  EXPECT_TRUE(template_has_thinking_switch(*src));
  const Vocab v = vocab_with(*src);
  auto on = format_chat(v, hello(std::nullopt));
  auto on_explicit = format_chat(v, hello(true));
  auto off = format_chat(v, hello(false));
  ASSERT_TRUE(on && on_explicit && off);
  EXPECT_EQ(*on, *on_explicit);
  // This Qwen3 template opens the thought itself when thinking is on, and closes it empty when off.
  EXPECT_TRUE(on->ends_with("<|im_start|>assistant\n<think>\n")) << *on;
  EXPECT_TRUE(prompt_opens_thinking(*on));
  EXPECT_TRUE(off->ends_with("<|im_start|>assistant\n<think>\n\n</think>\n\n")) << *off;
  EXPECT_FALSE(prompt_opens_thinking(*off));
}

// Nemotron 3 Nano (the nemotron_h hybrid family): enable_thinking switch; the generation prompt
// opens <think> when on and writes an empty <think></think> when off.
TEST(Thinking, Nemotron3NanoTemplateSwitch) {
  auto src = read_file(test::shared_path("templates/nemotron3-nano.jinja"));
  if (!src) GTEST_SKIP() << "missing nemotron3-nano.jinja";
  EXPECT_TRUE(template_supports_thinking(*src));
  EXPECT_TRUE(template_has_thinking_switch(*src));
  const Vocab v = vocab_with(*src);
  auto on = format_chat(v, hello(std::nullopt));
  auto off = format_chat(v, hello(false));
  ASSERT_TRUE(on && off);
  EXPECT_TRUE(on->ends_with("<|im_start|>assistant\n<think>\n")) << *on;
  EXPECT_TRUE(prompt_opens_thinking(*on));
  EXPECT_TRUE(off->ends_with("<|im_start|>assistant\n<think></think>")) << *off;
  EXPECT_FALSE(prompt_opens_thinking(*off));
  const ThinkingDelta d = split_thinking("Paris is in France.\n</think>\nParis.", true);
  EXPECT_EQ(d.thinking, "Paris is in France.");
  EXPECT_EQ(d.content, "Paris.");
}

TEST(Thinking, DeepSeekR1TemplateOpensThink) {
  auto src = read_file(test::shared_path("templates/deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja"));
  if (!src) GTEST_SKIP() << "missing the DeepSeek-R1 template";
  EXPECT_TRUE(template_supports_thinking(*src));
  EXPECT_FALSE(template_has_thinking_switch(*src));  // thinking off = drop the thinking output
  auto p = format_chat(vocab_with(*src), hello(std::nullopt));
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_TRUE(prompt_opens_thinking(*p)) << *p;
}

TEST(Thinking, PlainTemplatesCannotThink) {
  auto src = read_file(test::test_data_path("templates/meta-llama-Llama-3.1-8B-Instruct.jinja"));
  ASSERT_TRUE(src);
  EXPECT_FALSE(template_supports_thinking(*src));
  EXPECT_FALSE(template_supports_thinking(""));
  EXPECT_TRUE(template_supports_thinking("{{ if .Think }}<think>{{ end }}{{ .Prompt }}"));
}

}  // namespace test_thinking
}  // namespace hearth
