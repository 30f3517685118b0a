// ChatTemplate: finds the model's template (template_files.cpp), compiles it
// in the Rust minijinja environment and renders a conversation with the
// variables transformers passes (template_context.cpp).
#include "q3vl/chat_template.h"

#include <ctime>

#include "q3vl/error.h"
#include "text/rust_call.h"
#include "text/template_context.h"
#include "text/template_files.h"

namespace q3vl::text {

struct ChatTemplate::Impl {
  rust::TemplateHandle handle;
  std::string name;
  std::string source;
  SpecialTokens special_tokens;
};

namespace {

// strftime_now(format) for the Rust side: Python's datetime.now().strftime()
// also ends in C strftime on the local time, so the results agree.
std::size_t strftime_now(const std::uint8_t* format, std::size_t format_len, std::uint8_t* out, std::size_t cap) {
  const std::string fmt(reinterpret_cast<const char*>(format), format_len);
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  if (localtime_r(&now, &local) == nullptr) return 0;
  return std::strftime(reinterpret_cast<char*>(out), cap, fmt.c_str(), &local);
}

}  // namespace

ChatTemplate ChatTemplate::from_source(const std::string& source, const std::string& name,
                                       SpecialTokens special_tokens) {
  auto impl = std::make_unique<Impl>();
  TextTemplate* raw = nullptr;
  Q3vlTextError err{};
  rust::check(q3vl_template_new(rust::bytes_of(name), name.size(), rust::bytes_of(source), source.size(),
                                &strftime_now, &raw, &err),
              err, {name, ""});
  impl->handle.reset(raw);
  impl->name = name;
  impl->source = source;
  impl->special_tokens = std::move(special_tokens);
  return ChatTemplate(std::move(impl));
}

ChatTemplate ChatTemplate::load(const std::filesystem::path& model_dir) {
  TemplateFile file = find_chat_template(model_dir);
  SpecialTokens tokens;
  const auto config = model_dir / "tokenizer_config.json";
  std::error_code ec;
  if (std::filesystem::is_regular_file(config, ec)) tokens = load_special_tokens(config);
  return from_source(file.source, file.name, std::move(tokens));
}

ChatTemplate::ChatTemplate(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;
ChatTemplate::~ChatTemplate() = default;

std::string ChatTemplate::render(const std::vector<Message>& messages, const RenderOptions& options) const {
  if (messages.empty()) {
    throw_error(ErrorKind::usage, impl_->name, "messages", "at least one message", "an empty conversation");
  }
  const std::string context = build_template_context(messages, options, impl_->special_tokens);
  Q3vlTextBytes out{};
  Q3vlTextError err{};
  rust::check(q3vl_template_render(impl_->handle.get(), rust::bytes_of(context), context.size(), &out, &err), err,
              {impl_->name, ""});
  return rust::take_string(out);
}

const std::string& ChatTemplate::name() const { return impl_->name; }
const std::string& ChatTemplate::source() const { return impl_->source; }
const SpecialTokens& ChatTemplate::special_tokens() const { return impl_->special_tokens; }

}  // namespace q3vl::text
