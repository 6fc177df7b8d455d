// The parameters of one attention variant, type-erased so that AttentionSpec can hold whichever
// struct the chosen variant reads. A variant's parameters are a plain struct next to the variant
// (attention/variants/*.h):
//
//   struct StreamingParams {
//     int64_t start_size = 4;                       // defaults are the member initializers
//     template <class V> void visit(V& v) { v("start_size", start_size, "attention sinks"); }
//     std::vector<std::string> problems() const;    // invalid values, each naming its key and the fix
//   };
//
// and, when the variant has a local branch (keys nearer than L at their true distance), a
// `std::optional<int64_t> local_window() const`. ParamsOf<P> hands P's visit() the visitors of
// framework/config/spec.h, so reading, writing, help text and equality need nothing more.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include "framework/config/spec.h"

namespace lminf {

class VariantParams {
 public:
  virtual ~VariantParams() = default;
  virtual std::unique_ptr<VariantParams> clone() const = 0;
  virtual const std::type_info& type() const = 0;
  virtual const void* get() const = 0;  // the struct, of type type()
  virtual void* get() = 0;
  // The visitors of framework/config/spec_detail.h, each handed to the struct's visit().
  virtual void visit(spec_detail::SpecReader& v) = 0;
  virtual void visit(spec_detail::SpecWriter& v) = 0;
  virtual void visit(spec_detail::SpecDescriber& v) = 0;
  virtual void visit(spec_detail::FieldAddresses& v) = 0;
  virtual void visit(spec_detail::SpecComparer& v) = 0;
  virtual std::vector<std::string> keys() const = 0;  // in visit order
  virtual std::vector<std::string> problems() const = 0;
  virtual std::optional<int64_t> local_window() const = 0;
};

namespace variant_params_detail {

// Collects the key names of a visit.
struct KeyNames {
  std::vector<std::string>& out;
  template <class M, class... Opts>
  void operator()(const std::string& key, M&, const std::string&, const Opts&...) {
    out.push_back(key);
  }
};

template <class P, class = void>
struct HasLocalWindow : std::false_type {};
template <class P>
struct HasLocalWindow<P, std::void_t<decltype(std::declval<const P&>().local_window())>> : std::true_type {};

}  // namespace variant_params_detail

template <class P>
class ParamsOf final : public VariantParams {
 public:
  explicit ParamsOf(P p = P{}) : p_(std::move(p)) {}
  std::unique_ptr<VariantParams> clone() const override { return std::make_unique<ParamsOf>(p_); }
  const std::type_info& type() const override { return typeid(P); }
  const void* get() const override { return &p_; }
  void* get() override { return &p_; }
  void visit(spec_detail::SpecReader& v) override { p_.visit(v); }
  void visit(spec_detail::SpecWriter& v) override { p_.visit(v); }
  void visit(spec_detail::SpecDescriber& v) override { p_.visit(v); }
  void visit(spec_detail::FieldAddresses& v) override { p_.visit(v); }
  void visit(spec_detail::SpecComparer& v) override { p_.visit(v); }
  std::vector<std::string> keys() const override {
    std::vector<std::string> out;
    variant_params_detail::KeyNames names{out};
    spec_detail::visit_const(p_, names);
    return out;
  }
  std::vector<std::string> problems() const override { return p_.problems(); }
  std::optional<int64_t> local_window() const override {
    if constexpr (variant_params_detail::HasLocalWindow<P>::value) return p_.local_window();
    else return std::nullopt;
  }

 private:
  P p_;
};

}  // namespace lminf
