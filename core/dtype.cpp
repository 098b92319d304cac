#include "weightbus/weightbus.h"

namespace {

struct DtypeRow {
  uint32_t size;
  const char *name;
};

constexpr DtypeRow kDtypes[] = {
    {0, nullptr}, {1, "bool"}, {1, "u8"},     {1, "i8"},     {2, "i16"}, {4, "i32"},
    {8, "i64"},   {2, "f16"},  {2, "bf16"},   {4, "f32"},    {8, "f64"}, {1, "f8e4m3"},
    {1, "f8e5m2"}, {2, "u16"}, {4, "u32"},    {8, "u64"},
};

bool known(int32_t dtype) { return dtype > 0 && dtype < int32_t(sizeof(kDtypes) / sizeof(kDtypes[0])); }

}  // namespace

extern "C" WB_API uint32_t wb_dtype_size(int32_t dtype) { return known(dtype) ? kDtypes[dtype].size : 0; }

extern "C" WB_API const char *wb_dtype_name(int32_t dtype) { return known(dtype) ? kDtypes[dtype].name : nullptr; }
