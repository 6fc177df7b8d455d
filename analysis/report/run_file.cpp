#include "analysis/report/run_file.h"

#include "analysis/dump_schema.h"
#include "framework/core/error.h"

namespace lminf {

const std::vector<KnownSchema>& known_schemas() {
  static const std::vector<KnownSchema> s = {
      {dump_schema::kFactors, dump_schema::kFactorsVersion, RunFileKind::kFactors},
      {dump_schema::kTokenNll, dump_schema::kTokenNllVersion, RunFileKind::kTokenNll},
  };
  return s;
}

RunFile open_run_file(const std::filesystem::path& path, const std::string& label) {
  auto h5 = std::make_shared<H5Reader>(path);
  std::string names;
  for (const auto& k : known_schemas()) names += std::string(names.empty() ? "" : ", ") + k.name;
  if (!h5->has_attr("/", "schema"))
    fail(path.string(), ": not an lminf output (no root attribute 'schema'); lminf analyze reads ", names);
  const std::string schema = h5->attr_string("/", "schema");
  const KnownSchema* known = nullptr;
  for (const auto& k : known_schemas())
    if (schema == k.name) known = &k;
  if (!known) fail(path.string(), ": schema '", schema, "' is not one lminf analyze reads (it reads ", names, ")");
  if (!h5->has_attr("/", "schema_version"))
    fail(path.string(), ": schema '", schema, "' without a schema_version attribute (the file is damaged or not from lminf)");
  const int64_t version = h5->attr_int("/", "schema_version");
  if (version > known->version || version < 1)
    fail(path.string(), ": ", schema, " schema_version ", version, " is not one this lminf understands (it reads up to ",
         known->version, "; analyze it with the lminf that wrote it: git_revision ",
         h5->has_attr("/", "git_revision") ? h5->attr_string("/", "git_revision") : std::string("unknown"), ")");
  RunFile r;
  r.kind = known->kind;
  r.path = path;
  r.variant = h5->has_attr("/", "variant") ? h5->attr_string("/", "variant") : "";
  const std::string name = h5->has_attr("/", "name") ? h5->attr_string("/", "name") : path.stem().string();
  r.label = label.empty() ? name + (r.variant.empty() ? "" : " (" + r.variant + ")") : label;
  if (r.kind == RunFileKind::kFactors) {
    if (h5->has_attr("/", "max_position_embeddings")) r.trained_length = h5->attr_int("/", "max_position_embeddings");
    r.complete = h5->has_attr("/", "complete") && h5->attr_int("/", "complete") == 1;
  }
  r.h5 = std::move(h5);
  return r;
}

}  // namespace lminf
