#include "framework/io/h5_provenance.h"

#include "framework/core/version.h"

namespace lminf {

void write_provenance_attrs(H5Writer& h5, const nlohmann::json& provenance, const std::string& schema, int64_t version) {
  h5.set_attr("/", "schema", schema);
  h5.set_attr("/", "schema_version", version);
  h5.set_attr("/", "lminf_version", std::string(lminf::version()));
  for (auto it = provenance.begin(); it != provenance.end(); ++it) {
    const auto& v = it.value();
    if (v.is_string()) h5.set_attr("/", it.key(), v.get<std::string>());
    else if (v.is_number_integer()) h5.set_attr("/", it.key(), v.get<int64_t>());
    else if (v.is_number()) h5.set_attr("/", it.key(), v.get<double>());
    else h5.set_attr("/", it.key(), v.dump());
  }
}

}  // namespace lminf
